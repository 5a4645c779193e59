/*
 * session.h - the RFC 2645 protocol core: bytes in, replies and one action out, no socket needed.
 */
#ifndef ODMRD_SESSION_H
#define ODMRD_SESSION_H

#include <stddef.h>
#include "config.h"
#include "tls.h"

struct auth;
struct handoff;

/* What the caller must do next. */
enum sess_action {
	SA_CONTINUE,  /* read more input */
	SA_CLOSE,     /* the session is over: close the connection */
	SA_HANDOFF,   /* 250 sent to ATRN: run the reversed state (session_take_handoff()) */
	SA_STARTTLS   /* 220 sent to STARTTLS: run the prepared handshake, then session_tls_started() */
};

/* The caller's I/O, so the core can run on a socket, in a test, or in the fuzzer. */
struct session_io {
	void *ctx;
	/* Write all of BUF; -1 when the peer is gone or too slow. */
	int (*write)(void *ctx, const char *buf, size_t len);
	/* Sleep MS milliseconds (tarpit); tests record instead. */
	void (*pause)(void *ctx, unsigned ms);
	/* 1 if the peer has sent octets the core has not been given yet. */
	int (*pending)(void *ctx);
	/*
	 * Get TLS ready to start (load, parse the certificate and key) before the core promises it:
	 * 0 ready, -1 not available now (the core answers 454; the caller logs why). NULL: this
	 * connection cannot do STARTTLS (it is not offered).
	 */
	int (*tls_prepare)(void *ctx);
};

/* What a finished TLS handshake gives the core (and, through it, SASL). */
struct sess_tls {
	const struct tls_info *info;
	const char *cb_name;           /* channel binding: "tls-exporter", "tls-unique" or NULL */
	const unsigned char *cb;
	size_t cb_len;
};

struct session;

/* PEER: printable client address for logs. AUTH may be NULL: AUTH then answers 454. */
struct session *session_new(const struct config *cf, const struct session_io *io,
			    struct auth *auth, const char *peer);
/* Send the greeting (or 554 to a client that talked first, or 421 if STARTUP_ERR is set). */
enum sess_action session_start(struct session *s, const char *startup_err);
/*
 * TLS is up (after SA_STARTTLS, or before session_start in wrapper mode): the state returns to
 * before EHLO (RFC 3207 4.2), and SASL gets the TLS properties (EXTERNAL, channel binding).
 */
void session_tls_started(struct session *s, const struct sess_tls *t);
/* Give the core LEN octets read from the client. */
enum sess_action session_input(struct session *s, const char *buf, size_t len);
/* The client closed the connection. */
enum sess_action session_eof(struct session *s);
/* A timeout expired; IDLE: the per-command one, else the session deadline. */
enum sess_action session_timeout(struct session *s, int idle);
/* After SA_HANDOFF: the prepared handoff (ownership passes to the caller). */
struct handoff *session_take_handoff(struct session *s);
/* Record the reversed state's outcome for the summary line. */
void session_set_result(struct session *s, const char *result);
/* Log the summary line and free everything. */
void session_free(struct session *s);

#endif
