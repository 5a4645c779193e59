/*
 * linebuf.h - the one bounded CRLF line reader, used on the customer's socket and on MTA sockets.
 */
#ifndef ODMRD_LINEBUF_H
#define ODMRD_LINEBUF_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Longest line accepted anywhere, CRLF included: an AUTH command carrying an initial response of
 * RFC 4954's 12288 octets of base64: "AUTH " + a 20-octet mechanism + " " + 12288 + CRLF.
 */
#define LB_SIZE 12316
/* RFC 5321 command line limit, CRLF included. */
#define LB_CMD_LIMIT 512

enum lb_status {
	LB_LINE,     /* a complete line is returned */
	LB_MORE,     /* no complete line buffered yet */
	LB_BARE_LF,  /* LF not preceded by CR */
	LB_BARE_CR,  /* CR not followed by LF */
	LB_NUL,      /* NUL octet in a line */
	LB_TOO_LONG  /* line longer than the limit */
};

struct linebuf {
	size_t start;   /* first unconsumed octet */
	size_t len;     /* octets held, from 0 */
	char buf[LB_SIZE + 1];
};

void lb_init(struct linebuf *lb);
/* Append up to LEN octets; returns how many fitted. */
size_t lb_put(struct linebuf *lb, const char *data, size_t len);
/* One read(2) from FD into the free space: >0 octets, 0 EOF, -1 error (errno), -2 buffer full. */
ssize_t lb_fill(struct linebuf *lb, int fd);
/*
 * Take the next line if LIMIT (octets, CRLF included) allows it. *line is NUL-terminated without
 * CRLF and stays valid until the next call on LB. Errors are sticky: the stream cannot resync.
 */
enum lb_status lb_get(struct linebuf *lb, size_t limit, char **line, size_t *len);
/* Octets buffered and not yet returned as lines. */
size_t lb_pending(const struct linebuf *lb);
/* Pointer to the unconsumed octets (for peeking at a command word, or raw relaying). */
const char *lb_peek(const struct linebuf *lb);
/* Drop N unconsumed octets that the caller has used raw. */
void lb_consume(struct linebuf *lb, size_t n);

#endif
