/*
 * log.c - one place where odmrd's log lines leave the process.
 *
 * Under inetd stderr is the customer's socket, so nothing is ever written to fd 2: lines go to
 * syslog, or, when the admin sets log_file (containers, tests), are appended to that file with one
 * write(2) each so concurrent sessions never interleave within a line.
 * Trusts: its callers to pass client strings through log_esc() first; not the log_file path, which
 * root opens before the privilege drop in a directory the session's user may be able to write:
 * a symbolic link, a FIFO or device, or a hard link to another file is refused (syslog says why).
 * Invariant: no line contains a control character that came from the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_fd = -1;

/* True for the null device, the one non-file that is a sensible log (to discard it). */
static int log_is_null(const struct stat *st)
{
	struct stat null;

	return S_ISCHR(st->st_mode) && stat("/dev/null", &null) == 0 && S_ISCHR(null.st_mode) &&
	       st->st_rdev == null.st_rdev;
}

/*
 * Open FILE for appending without following a planted link: the last component must not be a
 * symbolic link (O_NOFOLLOW), must be a regular file (a FIFO would block us, a device is no log;
 * /dev/null is let through) with one name only (a hard link to a file elsewhere, where
 * protected_hardlinks is off). O_NONBLOCK keeps a FIFO from blocking the open itself. Returns the
 * descriptor, or -1 and a reason in WHY.
 */
static int log_open_file(const char *file, char *why, size_t whylen)
{
	struct stat st;
	int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC,
		      0640);

	if (fd < 0) {
		int e = errno;  /* ELOOP for a link; ENXIO for a FIFO nobody reads */
		if (lstat(file, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, whylen, "is a symbolic link");
		else if (lstat(file, &st) == 0 && !S_ISREG(st.st_mode))
			snprintf(why, whylen, "is not a regular file");
		else
			snprintf(why, whylen, "%s", strerror(e));
		return -1;
	}
	if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !log_is_null(&st)))
		snprintf(why, whylen, "is not a regular file");
	else if (st.st_nlink != 1 && S_ISREG(st.st_mode))
		snprintf(why, whylen, "has %lu hard links", (unsigned long)st.st_nlink);
	else if (fcntl(fd, F_SETFL, O_APPEND) != 0)
		snprintf(why, whylen, "%s", strerror(errno));
	else
		return fd;
	close(fd);
	return -1;
}

/*
 * Choose the destination: syslog, or an append-only file. A file that cannot be used safely is
 * not used: the lines go to syslog (FACILITY), starting with the reason, and -1 is returned.
 */
int log_open(int facility, const char *file)
{
	if (file != NULL && *file != '\0') {
		char why[256];
		int fd = log_open_file(file, why, sizeof why);
		if (fd >= 0) {
			if (log_fd >= 0)
				close(log_fd);
			log_fd = fd;
			return 0;
		}
		if (log_fd >= 0) {
			close(log_fd);
			log_fd = -1;
		}
		openlog("odmrd", LOG_PID | LOG_NDELAY, facility);
		syslog(LOG_ERR, "log_file %s refused (%s); logging to syslog", file, why);
		return -1;
	}
	openlog("odmrd", LOG_PID | LOG_NDELAY, facility);
	return 0;
}

/* Emit one log line; a file destination gets a syslog-like prefix. */
void log_msg(int prio, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	if (log_fd < 0) {
		vsyslog(prio, fmt, ap);
		va_end(ap);
		return;
	}
	time_t now = time(NULL);
	struct tm tm;
	size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S ", localtime_r(&now, &tm));
	int k = snprintf(line + n, sizeof line - n, "odmrd[%ld]: ", (long)getpid());
	if (k > 0)
		n += (size_t)k;
	k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
	line[n++] = '\n';
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
}

/* Escape client bytes so a log line can carry neither control characters nor unbounded text. */
static const char *log_escape(const char *s, size_t len, char *buf, size_t buflen, int keep_space)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (buflen < 8) {
		if (buflen)
			buf[0] = '\0';
		return buf;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = ((c >= 0x21 || (keep_space && c == ' ')) && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
		if (o + need + 4 > buflen) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

/* See log.h. */
const char *log_esc(const char *s, size_t len, char *buf, size_t buflen)
{
	return log_escape(s, len, buf, buflen, 0);
}

/* See log.h. */
const char *log_esc_text(const char *s, size_t len, char *buf, size_t buflen)
{
	return log_escape(s, len, buf, buflen, 1);
}

/* Release the destination (only matters for tests that reopen it). */
void log_close(void)
{
	if (log_fd >= 0) {
		close(log_fd);
		log_fd = -1;
	} else {
		closelog();
	}
}
