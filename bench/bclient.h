/*
 * bclient.h - the customer's side of the ODMR handshake, shared by the benchmark's C clients
 * (hsclient: handshake timing; sink -C: a C customer for the throughput runs).
 */
#ifndef BCLIENT_H
#define BCLIENT_H

#include <openssl/ssl.h>
#include <stddef.h>

struct bc_conn {
	int in, out;
	int timeout_ms;     /* per read */
	char buf[8192];
	size_t len;
	SSL_CTX *tls;       /* set: STARTTLS after the first EHLO (then EHLO again) */
	SSL *ssl;           /* the TLS session while one is up */
	SSL_SESSION *sess;  /* offered for resumption (set by bc_close when resume is on) */
	int resume;         /* keep each session for the next connection */
	int resumed;        /* the last handshake resumed a session */
};

long long bc_now_us(void);
int bc_write(struct bc_conn *c, const char *s);
int bc_reply(struct bc_conn *c, char *last, size_t lastlen);
void bc_wait_eof(struct bc_conn *c);
int bc_cram(const char *user, const char *pass, const char *b64, char *out, size_t outlen);
int bc_login(struct bc_conn *c, const char *user, const char *pass);
/* A client TLS context that trusts nothing in particular (the server is the one under test). */
SSL_CTX *bc_tls_ctx(void);
/* End TLS on C (keeping the session when c->resume) before the descriptor is closed. */
void bc_close(struct bc_conn *c);

#endif
