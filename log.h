/*
 * log.h - syslog output, and the escaping every client-supplied string goes through before it is logged.
 */
#ifndef ODMRD_LOG_H
#define ODMRD_LOG_H

#include <stddef.h>
#include <syslog.h>

/* Room for one escaped client string in a log line. */
#define LOG_ESC_SIZE 256

/*
 * Open syslog with FACILITY; with FILE non-NULL, append lines there instead (hosts without
 * syslogd). FILE is opened without following a symbolic link and must be a regular file with one
 * link; otherwise syslog is used, its first line says why, and -1 is returned.
 */
int log_open(int facility, const char *file);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy S (LEN octets) to BUF as printable ASCII: other octets become \xHH, over-long input ends in "...". */
const char *log_esc(const char *s, size_t len, char *buf, size_t buflen);
/* The same, but spaces stay spaces: for free text (libsasl2's messages), not key=value fields. */
const char *log_esc_text(const char *s, size_t len, char *buf, size_t buflen);
void log_close(void);

#endif
