/*
 * net.c - bounded writes and the clock for odmrd's deadlines.
 *
 * Trusts nothing about the peer: a client (or MTA) that stops reading must not hold a process
 * forever, so every write has a deadline. Invariant: SIGPIPE is ignored by the caller (odmrd.c),
 * so a vanished peer is an error return, never a signal.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

/* See net.h. */
long long net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* See net.h. */
int net_write_all(int fd, const char *buf, size_t len, unsigned timeout_s)
{
	return net_write_by(fd, buf, len, net_now_ms() + (long long)timeout_s * 1000);
}

/* See net.h. On a non-blocking descriptor the deadline covers waiting for buffer space. */
int net_write_by(int fd, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		long long left = deadline - net_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
	}
	return 0;
}
