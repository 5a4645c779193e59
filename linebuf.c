/*
 * linebuf.c - bounded CRLF line reader on read(2).
 *
 * Trusts nothing it reads. Invariants: never holds more than LB_SIZE octets; returns only lines that
 * end in CR LF and contain no other CR, LF or NUL; a line over the caller's limit is refused as soon
 * as the limit is passed, without waiting for its end.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "linebuf.h"

/* Start empty. */
void lb_init(struct linebuf *lb)
{
	lb->start = 0;
	lb->len = 0;
	lb->buf[0] = '\0';
}

/* Move unconsumed octets to the front so the free space is contiguous. */
static void lb_compact(struct linebuf *lb)
{
	if (lb->start == 0)
		return;
	memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
	lb->len -= lb->start;
	lb->start = 0;
}

/* Copy what fits of DATA; the caller treats a short count as an over-long line. */
size_t lb_put(struct linebuf *lb, const char *data, size_t len)
{
	lb_compact(lb);
	size_t room = LB_SIZE - lb->len;
	if (len > room)
		len = room;
	memcpy(lb->buf + lb->len, data, len);
	lb->len += len;
	return len;
}

/* Read once from FD into the free space, retrying only on EINTR. */
ssize_t lb_fill(struct linebuf *lb, int fd)
{
	lb_compact(lb);
	if (lb->len == LB_SIZE)
		return -2;
	ssize_t n;
	do
		n = read(fd, lb->buf + lb->len, LB_SIZE - lb->len);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		lb->len += (size_t)n;
	return n;
}

/* Find the next line; see linebuf.h for the contract. */
enum lb_status lb_get(struct linebuf *lb, size_t limit, char **line, size_t *len)
{
	char *p = lb->buf + lb->start;
	size_t avail = lb->len - lb->start;

	if (limit > LB_SIZE)
		limit = LB_SIZE;
	for (size_t i = 0; i < avail; i++) {
		if (i + 2 > limit)
			return LB_TOO_LONG;
		if (p[i] == '\0')
			return LB_NUL;
		if (p[i] == '\n')
			return LB_BARE_LF;
		if (p[i] != '\r')
			continue;
		if (i + 1 == avail)
			return LB_MORE;
		if (p[i + 1] != '\n')
			return LB_BARE_CR;
		p[i] = '\0';
		*line = p;
		*len = i;
		lb->start += i + 2;
		return LB_LINE;
	}
	return LB_MORE;
}

/* Count what is buffered beyond the lines already returned. */
size_t lb_pending(const struct linebuf *lb)
{
	return lb->len - lb->start;
}

/* Expose the unconsumed octets without consuming them. */
const char *lb_peek(const struct linebuf *lb)
{
	return lb->buf + lb->start;
}

/* Mark N unconsumed octets as used. */
void lb_consume(struct linebuf *lb, size_t n)
{
	if (n > lb->len - lb->start)
		n = lb->len - lb->start;
	lb->start += n;
}
