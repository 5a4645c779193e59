/*
 * conn.c - the one connection layer for the customer's socket: plain, or TLS through the module.
 *
 * Trusts nothing the customer sends; trusts the TLS module (tls.h) to do TLS, never to touch a
 * socket: it reads through conn_tls_recv and writes into our output buffer through conn_tls_send,
 * so every wait here has a deadline and many small records leave in few large writes.
 * Invariants: descriptors are non-blocking; no call waits past its deadline; once TLS has started,
 * no plaintext octet is ever read or written on the socket again; a fatal error is sticky.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "net.h"

/* Output collected from the module before it goes to the socket: a flush per 64 KiB at most. */
#define CONN_OUT_FLUSH 65536
#define CONN_OUT_MAX (CONN_OUT_FLUSH + 20000)   /* room for one more full record */
#define CONN_RECORD_MAX 16384

struct conn {
	int in, out;
	bool failed;                  /* a fatal error: every later call fails */
	bool line_records;
	const struct tls_ops *ops;    /* NULL: plain */
	struct tls_srv *tls;
	bool handshaking;             /* prepared, handshake not finished: still plain */
	struct tls_info info;
	size_t olen;
	unsigned char *obuf;          /* CONN_OUT_MAX octets, allocated when TLS is set up */
};

/* See conn.h. */
struct conn *conn_new(int in, int out)
{
	struct conn *c = calloc(1, sizeof *c);
	int one = 1;

	if (c == NULL)
		return NULL;
	c->in = in;
	c->out = out;
	fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK);
	if (out != in)
		fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK);
	/* Not a TCP socket (a test's socketpair): the option just fails. */
	setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return c;
}

/* See conn.h. */
int conn_fd(const struct conn *c)
{
	return c->in;
}

/* Wait until FD is ready for EVENTS or DEADLINE passes; 1 ready, 0 timeout (errno set), -1 error. */
static int conn_wait(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline - net_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return 0;
		}
		int r = poll(&p, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Write all of BUF to the socket by DEADLINE. */
static int conn_raw_write(struct conn *c, const void *buf, size_t len, long long deadline)
{
	return net_write_by(c->out, buf, len, deadline);
}

/* Send what the module has written so far. */
static int conn_flush(struct conn *c, long long deadline)
{
	if (c->olen == 0)
		return 0;
	if (conn_raw_write(c, c->obuf, c->olen, deadline) < 0) {
		c->failed = true;
		return -1;
	}
	c->olen = 0;
	return 0;
}

/* tls_io.recv: one non-blocking read for the module. */
static int conn_tls_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	ssize_t n;

	do
		n = read(c->in, buf, len > CONN_RECORD_MAX * 2 ? CONN_RECORD_MAX * 2 : len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	return errno == EAGAIN ? TLS_WANT_READ : TLS_ERR;
}

/* tls_io.send: collect the module's records; the caller flushes them. */
static int conn_tls_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	size_t room = CONN_OUT_MAX - c->olen;

	if (room == 0)
		return TLS_WANT_WRITE;
	if (len > room)
		len = room;
	memcpy(c->obuf + c->olen, buf, len);
	c->olen += len;
	return (int)len;
}

/*
 * After a module call returned RC: flush if it asked to (or always, FORCE), wait for input if it
 * asked for that. 1: call again, 0: RC is final, -1: failed or deadline passed (errno).
 */
static int conn_tls_again(struct conn *c, int rc, bool force, long long deadline)
{
	if ((force || rc == TLS_WANT_WRITE || c->olen >= CONN_OUT_FLUSH) && conn_flush(c, deadline) < 0)
		return -1;
	if (rc == TLS_WANT_WRITE)
		return 1;
	if (rc != TLS_WANT_READ)
		return 0;
	int w = conn_wait(c->in, POLLIN, deadline);
	if (w <= 0) {
		if (w < 0)
			c->failed = true;
		return -1;
	}
	return 1;
}

/* See conn.h. */
ssize_t conn_read(struct conn *c, void *buf, size_t len, long long deadline)
{
	if (c->failed) {
		errno = EPIPE;
		return -1;
	}
	for (;;) {
		if (c->tls == NULL || c->handshaking) {
			ssize_t n = read(c->in, buf, len);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			if (deadline == 0)
				return -1;
			int w = conn_wait(c->in, POLLIN, deadline);
			if (w <= 0)
				return -1;
			continue;
		}
		int rc = c->ops->read(c->tls, buf, len > CONN_RECORD_MAX ? CONN_RECORD_MAX : len);
		if (rc >= 0) {
			/* A read may have made the module answer (e.g. a key update): send it. */
			if (c->olen && conn_flush(c, deadline ? deadline : net_now_ms() + 1000) < 0)
				return -1;
			return rc;
		}
		if (rc == TLS_ERR) {
			c->failed = true;
			errno = EPROTO;
			return -1;
		}
		if (rc == TLS_WANT_READ && deadline == 0) {
			if (c->olen && conn_flush(c, net_now_ms() + 1000) < 0)
				return -1;
			errno = EAGAIN;
			return -1;
		}
		if (conn_tls_again(c, rc, false, deadline) < 0)
			return -1;
	}
}

/* Hand BUF (one record's worth at most) to the module until it has taken it. */
static int conn_tls_write1(struct conn *c, const char *buf, size_t len, long long deadline)
{
	for (;;) {
		int rc = c->ops->write(c->tls, buf, len);
		if (rc == (int)len)
			return conn_tls_again(c, 0, false, deadline) < 0 ? -1 : 0;
		if (rc >= 0 || rc == TLS_ERR) {
			c->failed = true;
			return -1;
		}
		if (conn_tls_again(c, rc, false, deadline) < 0)
			return -1;
	}
}

/* See conn.h. */
int conn_write(struct conn *c, const void *vbuf, size_t len, long long deadline)
{
	const char *buf = vbuf;

	if (c->failed)
		return -1;
	if (c->tls == NULL || c->handshaking)
		return conn_raw_write(c, buf, len, deadline);
	while (len > 0) {
		size_t k = len > CONN_RECORD_MAX ? CONN_RECORD_MAX : len;
		if (c->line_records) {
			const char *nl = memchr(buf, '\n', k);
			if (nl != NULL)
				k = (size_t)(nl - buf) + 1;
		}
		if (conn_tls_write1(c, buf, k, deadline) < 0)
			return -1;
		buf += k;
		len -= k;
	}
	return conn_flush(c, deadline);
}

/* See conn.h. */
int conn_pending(struct conn *c)
{
	struct pollfd p = { .fd = c->in, .events = POLLIN | POLLRDHUP };
	int n = 0;

	if (c->tls != NULL && !c->handshaking && c->ops->pending(c->tls) > 0)
		return 1;
	if (ioctl(c->in, FIONREAD, &n) == 0 && n > 0)
		return 1;
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* See conn.h. */
void conn_set_line_records(struct conn *c, bool on)
{
	c->line_records = on;
}

/* See conn.h. */
int conn_tls_prepare(struct conn *c, const struct tls_ops *ops, const struct tls_cfg *cfg,
		     char *err, size_t errlen)
{
	struct tls_io io = { c, conn_tls_recv, conn_tls_send };

	if (c->tls != NULL || c->failed) {
		snprintf(err, errlen, "TLS already set up");
		return -1;
	}
	if (c->obuf == NULL && (c->obuf = malloc(CONN_OUT_MAX)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->tls = ops->server_new(cfg, &io, err, errlen);
	if (c->tls == NULL)
		return -1;
	c->ops = ops;
	c->handshaking = true;
	return 0;
}

/* See conn.h. */
int conn_starttls(struct conn *c, long long deadline, char *err, size_t errlen)
{
	if (c->tls == NULL || !c->handshaking) {
		snprintf(err, errlen, "TLS not prepared");
		return -1;
	}
	for (;;) {
		int rc = c->ops->handshake(c->tls);
		int again = conn_tls_again(c, rc, true, deadline);
		if (again > 0)
			continue;
		if (again < 0) {
			snprintf(err, errlen, "%s", errno == ETIMEDOUT ? "handshake timed out" :
				 "connection lost during the handshake");
			c->failed = true;
			return -1;
		}
		if (rc != 0) {
			snprintf(err, errlen, "%s", c->ops->error(c->tls));
			c->failed = true;
			return -1;
		}
		break;
	}
	c->handshaking = false;
	c->ops->info(c->tls, &c->info);
	return 0;
}

/* See conn.h. */
const struct tls_info *conn_tls(const struct conn *c)
{
	return c->tls != NULL && !c->handshaking && !c->failed ? &c->info : NULL;
}

/* See conn.h. */
int conn_channel_binding(struct conn *c, const char **name, unsigned char *data, size_t *len)
{
	if (conn_tls(c) == NULL)
		return -1;
	return c->ops->channel_binding(c->tls, name, data, len);
}

/* See conn.h. */
void conn_free(struct conn *c, long long deadline)
{
	if (c == NULL)
		return;
	if (c->tls != NULL) {
		if (!c->failed && !c->handshaking) {
			c->ops->shutdown(c->tls);
			conn_flush(c, deadline);
		}
		c->ops->free(c->tls);
	}
	free(c->obuf);
	free(c);
}
