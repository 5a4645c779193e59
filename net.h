/*
 * net.h - the two socket primitives every wait in odmrd is built from: a monotonic clock and a
 * bounded write.
 */
#ifndef ODMRD_NET_H
#define ODMRD_NET_H

#include <stddef.h>

/* Milliseconds on a monotonic clock. */
long long net_now_ms(void);
/* Write all of BUF to FD within TIMEOUT_S seconds; -1 if the peer is gone or stopped reading. */
int net_write_all(int fd, const char *buf, size_t len, unsigned timeout_s);
/* The same by DEADLINE (net_now_ms() milliseconds). */
int net_write_by(int fd, const char *buf, size_t len, long long deadline);

#endif
