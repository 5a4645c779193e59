/*
 * log.c - one place where odmrd's log lines leave the process.
 *
 * Under inetd stderr is the customer's socket, so nothing is ever written to fd 2: lines go to
 * syslog, or, when the admin sets log_file (containers, tests), are appended to that file with one
 * write(2) each so concurrent sessions never interleave within a line.
 * Trusts: its callers to pass client strings through log_esc() first. Invariant: no line contains
 * a control character that came from the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_fd = -1;

/* Choose the destination: syslog, or an append-only file. */
int log_open(int facility, const char *file)
{
	if (file != NULL && *file != '\0') {
		int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		if (log_fd >= 0)
			close(log_fd);
		log_fd = fd;
		return 0;
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
