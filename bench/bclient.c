/*
 * bclient.c - the customer's side of the ODMR handshake for the benchmark's C clients.
 *
 * Blocking, one reply at a time (odmrd offers no PIPELINING). CRAM-MD5 is computed with
 * OpenSSL's libcrypto (HMAC-MD5, base64), STARTTLS with its libssl (the same client for odmrd and
 * Postfix, so their server-side costs compare): dependency libssl-dev, benchmark only.
 * Trusts the server under test only as far as the buffer: an over-long reply is an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bclient.h"

/* Monotonic microseconds, for latencies. */
long long bc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Write the whole string. */
int bc_write(struct bc_conn *c, const char *s)
{
	size_t len = strlen(s);

	if (c->ssl != NULL)
		return SSL_write(c->ssl, s, (int)len) == (int)len ? 0 : -1;
	while (len > 0) {
		ssize_t n = write(c->out, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one (possibly multi-line) reply; returns its code, last line text in LAST. -1 on error/EOF. */
int bc_reply(struct bc_conn *c, char *last, size_t lastlen)
{
	for (;;) {
		char *eol;
		while ((eol = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t ll = (size_t)(eol - c->buf) + 1;
			char line[sizeof c->buf + 1];
			memcpy(line, c->buf, ll);
			line[ll] = '\0';
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			if (ll < 4)
				return -1;
			if (line[3] == '-')
				continue;
			if (last) {
				size_t k = strcspn(line, "\r\n");
				snprintf(last, lastlen, "%.*s", (int)k, line);
			}
			return atoi(line);
		}
		if (c->len == sizeof c->buf)
			return -1;
		struct pollfd p = { .fd = c->in, .events = POLLIN };
		int r = c->ssl && SSL_pending(c->ssl) ? 1 : poll(&p, 1, c->timeout_ms > 0 ? c->timeout_ms : 20000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len)) :
			read(c->in, c->buf + c->len, sizeof c->buf - c->len);
		if (c->ssl && n <= 0 && SSL_get_error(c->ssl, (int)n) == SSL_ERROR_WANT_READ)
			continue;   /* a record that was not data (a session ticket) */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

/* Wait for the server to close (bounded by the read timeout). */
void bc_wait_eof(struct bc_conn *c)
{
	char tmp[512];

	for (;;) {
		struct pollfd p = { .fd = c->in, .events = POLLIN };
		if (!(c->ssl && SSL_pending(c->ssl)) && poll(&p, 1, c->timeout_ms > 0 ? c->timeout_ms : 20000) <= 0)
			return;
		int n = c->ssl ? SSL_read(c->ssl, tmp, sizeof tmp) : (int)read(c->in, tmp, sizeof tmp);
		if (n <= 0 && !(c->ssl && SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ))
			return;
	}
}

/* CRAM-MD5 response line (CRLF included) to base64 challenge B64: base64("user hexdigest"). */
int bc_cram(const char *user, const char *pass, const char *b64, char *out, size_t outlen)
{
	unsigned char chal[1024], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t bl = strlen(b64);

	if (bl == 0 || bl > 1300)
		return -1;
	int n = EVP_DecodeBlock(chal, (const unsigned char *)b64, (int)bl);
	if (n < 0)
		return -1;
	while (bl > 0 && b64[bl - 1] == '=') { /* EVP_DecodeBlock counts padding as zero bytes */
		n--;
		bl--;
	}
	if (!HMAC(EVP_md5(), pass, (int)strlen(pass), chal, (size_t)n, md, &mdlen))
		return -1;
	char plain[512];
	int o = snprintf(plain, sizeof plain, "%s ", user);
	for (unsigned i = 0; i < mdlen; i++)
		o += snprintf(plain + o, sizeof plain - (size_t)o, "%02x", md[i]);
	if ((size_t)(4 * ((o + 2) / 3) + 3) > outlen)
		return -1;
	int e = EVP_EncodeBlock((unsigned char *)out, (unsigned char *)plain, o);
	memcpy(out + e, "\r\n", 3);
	return 0;
}

/* 220, EHLO, AUTH CRAM-MD5: 235 on success, else a negative step number or -code. */
int bc_login(struct bc_conn *c, const char *user, const char *pass)
{
	char last[sizeof c->buf], cmd[2048];
	int code;

	if ((code = bc_reply(c, NULL, 0)) != 220)
		return code < 0 ? -1 : -code;
	if (bc_write(c, "EHLO bench.test\r\n") < 0 || bc_reply(c, NULL, 0) != 250)
		return -1;
	if (c->tls != NULL) {
		if (bc_write(c, "STARTTLS\r\n") < 0 || bc_reply(c, NULL, 0) != 220 || c->len != 0)
			return -6;
		c->ssl = SSL_new(c->tls);
		SSL_set_fd(c->ssl, c->in);
		if (c->sess != NULL)
			SSL_set_session(c->ssl, c->sess);
		if (SSL_connect(c->ssl) != 1)
			return -7;
		c->resumed = SSL_session_reused(c->ssl);
		if (bc_write(c, "EHLO bench.test\r\n") < 0 || bc_reply(c, NULL, 0) != 250)
			return -8;
	}
	if (bc_write(c, "AUTH CRAM-MD5\r\n") < 0 || bc_reply(c, last, sizeof last) != 334)
		return -2;
	if (bc_cram(user, pass, last + 4, cmd, sizeof cmd) < 0 || bc_write(c, cmd) < 0)
		return -3;
	code = bc_reply(c, NULL, 0);
	return code == 235 ? 235 : code < 0 ? -4 : -code;
}

/* See bclient.h. */
SSL_CTX *bc_tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx != NULL)
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	return ctx;
}

/* See bclient.h. */
void bc_close(struct bc_conn *c)
{
	if (c->ssl == NULL)
		return;
	/* Without our close_notify, SSL_free marks the session not resumable. */
	SSL_shutdown(c->ssl);
	if (c->resume) {
		SSL_SESSION *s = SSL_get1_session(c->ssl);
		if (s != NULL && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(c->sess);
			c->sess = s;
		} else {
			SSL_SESSION_free(s);
		}
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
}
