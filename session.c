/*
 * session.c - the provider side of RFC 2645 up to the turn: EHLO, AUTH, ATRN, QUIT.
 *
 * Trusts: the config, and the auth/domains/handoff modules behind their interfaces (base64 too
 * comes from auth.h, so the core links without libsasl2). Trusts nothing the client sends.
 * Invariants: one state enum and one command table decide what is allowed before any handler
 * runs; the state changes only in sess_enter_state(), which also ends every AUTH exchange with a
 * fresh SASL context; every answer leaves through reply(); the client must wait for each reply
 * (we never advertise PIPELINING), so octets that arrive ahead of a reply end the session with
 * 554; nothing is handed off unless the last thing the client sent was the ATRN line. STARTTLS:
 * no octet the client sent before the handshake is ever processed (CVE-2011-0411: the session
 * ends); after TLS the state returns to before EHLO and only what the client says under TLS counts.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "domains.h"
#include "handoff.h"
#include "linebuf.h"
#include "log.h"
#include "session.h"

enum sess_state {
	ST_GREET = 1 << 0,   /* greeting sent, no EHLO yet */
	ST_READY = 1 << 1,   /* EHLO done, not authenticated */
	ST_AUTH = 1 << 2,    /* inside a SASL exchange: lines are responses, not commands */
	ST_AUTHED = 1 << 3,  /* authenticated: ATRN and QUIT */
	ST_DONE = 1 << 4     /* 250 to ATRN sent, or closing */
};
#define ST_ANY (ST_GREET | ST_READY | ST_AUTHED)

/* Largest decoded SASL message: AUTH_B64_MAX octets of base64. */
#define SESS_SASL_MAX (AUTH_B64_MAX / 4 * 3)
/* An AUTH command with the largest initial response fits the line reader. */
_Static_assert(LB_SIZE >= sizeof "AUTH " - 1 + AUTH_MECH_MAX + 1 + AUTH_B64_MAX + 2,
	       "LB_SIZE too small for RFC 4954");

struct session {
	const struct config *cf;
	struct session_io io;
	struct auth *auth;
	struct handoff *ho;
	enum sess_state state;
	unsigned errors;
	unsigned junk;                /* commands that moved nothing forward */
	unsigned auth_failures;
	bool auth_final;              /* success data sent in a 334: expect an empty response */
	bool in_atrn;                 /* replies now answer an ATRN */
	bool tls;                     /* TLS is up */
	char tls_log[96];             /* "TLSv1.3/TLS_AES_128_GCM_SHA256" or "-" */
	char cert_log[LOG_ESC_SIZE];  /* verified client certificate identity, escaped, or "-" */
	int last_code;                /* last reply code, for the summary */
	int atrn_code;                /* reply to the last ATRN, 0 if none */
	const char *result;           /* reversed-state outcome, for the summary */
	char mech[AUTH_MECH_MAX + 1];
	char user[LOG_ESC_SIZE];      /* as libsasl2 reports it */
	char user_log[LOG_ESC_SIZE];  /* the same, escaped */
	char peer[LOG_ESC_SIZE];
	char helo[LOG_ESC_SIZE];      /* escaped */
	char asked[512];
	char granted[512];
	/* Buffers last: session_new() leaves them unzeroed (each is written before it is read). */
	struct linebuf lb;
	char sasl_buf[SESS_SASL_MAX + 1];
	char out[LB_SIZE * 2];        /* one reply, formatted */
};

typedef enum sess_action (*cmd_fn)(struct session *, const char *arg);

/* What a command needs from TLS, checked by the dispatcher after the state. */
enum cmd_tls {
	CT_ANY,       /* nothing */
	CT_PLAIN,     /* only before TLS (STARTTLS): 503 after */
	CT_AUTH,      /* TLS first under tls_security_level = encrypt or tls_auth_only: 530 */
	CT_ENCRYPT    /* TLS first under tls_security_level = encrypt: 530 */
};

/*
 * The command table: where each command is allowed, where it is junk (answered, but moving the
 * session nowhere: counted against junk_command_limit, as Postfix's smtpd_junk_command_limit
 * does), the answer anywhere else, and what it needs from TLS.
 */
struct cmd {
	const char *name;
	cmd_fn fn;
	unsigned states;
	unsigned junk;
	int oos_code;
	const char *oos_text;
	enum cmd_tls tls;
};

static enum sess_action cmd_ehlo(struct session *, const char *);
static enum sess_action cmd_auth(struct session *, const char *);
static enum sess_action cmd_atrn(struct session *, const char *);
static enum sess_action cmd_quit(struct session *, const char *);
static enum sess_action cmd_noop(struct session *, const char *);
static enum sess_action cmd_starttls(struct session *, const char *);

static const struct cmd cmd_table[] = {
	{ "EHLO", cmd_ehlo, ST_GREET | ST_READY, ST_READY, 503, "Already authenticated", CT_ANY },
	{ "AUTH", cmd_auth, ST_READY, 0, 503, "Send EHLO first, or already authenticated", CT_AUTH },
	{ "ATRN", cmd_atrn, ST_AUTHED, 0, 530, "Authentication required", CT_ENCRYPT },
	{ "QUIT", cmd_quit, ST_ANY, 0, 0, NULL, CT_ANY },
	{ "NOOP", cmd_noop, ST_ANY, ST_ANY, 0, NULL, CT_ANY },
	{ "RSET", cmd_noop, ST_ANY, ST_ANY, 0, NULL, CT_ANY },
	{ "STARTTLS", cmd_starttls, ST_GREET | ST_READY, 0, 503, "5.5.1 Already authenticated", CT_PLAIN },
};

/* The greeting and EHLO name we present. */
static const char *sess_name(const struct session *s)
{
	return s->cf->hostname ? s->cf->hostname : "localhost";
}

/*
 * The one place the state changes (OpenSMTPD's smtp_enter_state). Leaving ST_AUTH, whichever way
 * (235, any failure, cancel, bad base64, or the session ending), ends the SASL exchange the same
 * way: a fresh SASL context, so nothing of one attempt survives into the next. False if that
 * fresh context could not be made.
 */
static bool sess_enter_state(struct session *s, enum sess_state next)
{
	bool ok = true;

	if (s->state == ST_AUTH && next != ST_AUTH) {
		s->auth_final = false;
		ok = auth_reset(s->auth) == AUTH_OK;
	}
	s->state = next;
	return ok;
}

/*
 * Replies that feed the error limit: the client did something wrong, or an ATRN was refused
 * (450, 451, 453: each refused ATRN may have cost a queue listing, so asking again and again
 * must end like any other error loop).
 */
static bool reply_is_error(const struct session *s, int code)
{
	return (code >= 500 && code <= 504) || code == 530 || code == 554 ||
	       (s->in_atrn && code >= 450 && code <= 453);
}

/*
 * The one way out for every answer: formats CODE and TEXT (one line per '\n'), applies the tarpit,
 * writes, and enforces the hard error limit.
 */
static enum sess_action reply(struct session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum sess_action reply(struct session *s, int code, const char *fmt, ...)
{
	char text[sizeof s->out];
	va_list ap;
	size_t o = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	for (char *line = text, *nl;; line = nl + 1) {
		nl = strchr(line, '\n');
		int k = snprintf(s->out + o, sizeof s->out - o, "%d%c%.*s\r\n", code, nl ? '-' : ' ',
				 nl ? (int)(nl - line) : (int)strlen(line), line);
		if (k > 0)
			o += (size_t)k < sizeof s->out - o ? (size_t)k : sizeof s->out - o - 1;
		if (nl == NULL)
			break;
	}
	s->last_code = code;
	if (s->in_atrn)
		s->atrn_code = code;
	if (reply_is_error(s, code) && ++s->errors > s->cf->soft_error_limit)
		s->io.pause(s->io.ctx, s->cf->error_delay_ms);
	if (s->io.write(s->io.ctx, s->out, o) < 0) {
		log_msg(LOG_INFO, "write to client failed; closing");
		sess_enter_state(s, ST_DONE);
		return SA_CLOSE;
	}
	if (code == 421 || code == 221 || code == 554) {
		sess_enter_state(s, ST_DONE);
		return SA_CLOSE;
	}
	if (reply_is_error(s, code) && s->errors >= s->cf->hard_error_limit) {
		log_msg(LOG_NOTICE, "too many errors (%u) from %s; closing", s->errors, s->peer);
		return reply(s, 421, "%s Too many errors, closing connection", sess_name(s));
	}
	return SA_CONTINUE;
}

/* See session.h. */
struct session *session_new(const struct config *cf, const struct session_io *io,
			    struct auth *auth, const char *peer)
{
	/*
	 * Zero only the fields before the buffers: calloc() would clear all 46 KiB, and on a fresh
	 * heap that is a dozen page faults of a process that lives for one connection.
	 */
	struct session *s = malloc(sizeof *s);

	if (s == NULL)
		return NULL;
	memset(s, 0, offsetof(struct session, lb));
	s->cf = cf;
	s->io = *io;
	s->auth = auth;
	s->state = ST_GREET;
	lb_init(&s->lb);
	log_esc(peer, strlen(peer), s->peer, sizeof s->peer);
	strcpy(s->user_log, "-");
	strcpy(s->mech, "-");
	strcpy(s->helo, "-");
	strcpy(s->asked, "-");
	strcpy(s->granted, "-");
	strcpy(s->tls_log, "-");
	strcpy(s->cert_log, "-");
	return s;
}

/* STARTTLS can be offered: a certificate is configured and this connection can start TLS. */
static bool sess_tls_offered(const struct session *s)
{
	return !s->tls && s->io.tls_prepare != NULL && s->cf->tls_cert_file != NULL &&
	       (s->cf->tls_security_level == CF_TLS_MAY || s->cf->tls_security_level == CF_TLS_ENCRYPT);
}

/* AUTH must wait for TLS: tls_security_level = encrypt, or tls_auth_only. */
static bool sess_auth_needs_tls(const struct session *s)
{
	return !s->tls && (s->cf->tls_security_level == CF_TLS_ENCRYPT ||
			   (s->cf->tls_auth_only && s->cf->tls_cert_file != NULL));
}

/* See session.h. */
enum sess_action session_start(struct session *s, const char *startup_err)
{
	if (startup_err != NULL) {
		log_msg(LOG_ERR, "cannot serve %s: %s", s->peer, startup_err);
		return reply(s, 421, "%s Service not available, closing connection", sess_name(s));
	}
	if (s->cf->greet_pause_ms)
		s->io.pause(s->io.ctx, s->cf->greet_pause_ms);
	if (s->io.pending(s->io.ctx)) {
		log_msg(LOG_NOTICE, "%s sent data before the greeting", s->peer);
		return reply(s, 554, "%s Protocol violation: data before greeting", sess_name(s));
	}
	return reply(s, 220, "%s ESMTP on-demand mail relay (RFC 2645) ready", sess_name(s));
}

/* A host name or address literal as RFC 5321 EHLO carries it (letters, digits, . - _ [ ] :). */
static bool sess_valid_helo(const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)arg[i];
		if (!isalnum(c) && !strchr(".-_[]:", c))
			return false;
	}
	return true;
}

/* EHLO: RFC 2645 5.1.1 - the reply MUST include AUTH and ATRN. */
static enum sess_action cmd_ehlo(struct session *s, const char *arg)
{
	if (arg == NULL || !sess_valid_helo(arg))
		return reply(s, 501, "Syntax: EHLO hostname");
	log_esc(arg, strlen(arg), s->helo, sizeof s->helo);
	sess_enter_state(s, ST_READY);
	const char *tls = sess_tls_offered(s) ? "\nSTARTTLS" : "";
	/* Under tls_auth_only / encrypt, a plaintext EHLO neither offers AUTH nor sets SASL up. */
	if (s->auth == NULL || sess_auth_needs_tls(s))
		return reply(s, 250, "%s%s\nATRN", sess_name(s), tls);
	char why[256];
	if (auth_ready(s->auth, why, sizeof why) != 0) {
		log_msg(LOG_ERR, "cannot serve %s: %s", s->peer, why);
		return reply(s, 421, "%s Service not available, closing connection", sess_name(s));
	}
	/* Empty before TLS when every listed mechanism needs it (PLAIN, LOGIN, EXTERNAL, -PLUS). */
	const char *mechs = auth_mechs(s->auth);
	if (mechs[0] == '\0')
		return reply(s, 250, "%s%s\nATRN", sess_name(s), tls);
	return reply(s, 250, "%s%s\nAUTH %s\nATRN", sess_name(s), tls, mechs);
}

/* STARTTLS (RFC 3207): 220, then the caller runs the handshake (SA_STARTTLS). */
static enum sess_action cmd_starttls(struct session *s, const char *arg)
{
	if (!sess_tls_offered(s))
		return reply(s, 502, "5.5.1 Command not implemented");
	if (arg != NULL)
		return reply(s, 501, "5.5.4 Syntax: STARTTLS (no parameters)");
	/*
	 * Anything the client sent after the STARTTLS line would be read as if it came through TLS
	 * (CVE-2011-0411 command injection): checked before the 220, when nothing of the client's
	 * can be a ClientHello yet.
	 */
	if (s->io.pending(s->io.ctx)) {
		log_msg(LOG_NOTICE, "%s sent data after STARTTLS (command injection?); closing", s->peer);
		return reply(s, 554, "5.5.1 Data after STARTTLS: wait for the 220");
	}
	if (s->io.tls_prepare(s->io.ctx) < 0)
		return reply(s, 454, "4.7.0 TLS not available due to local problem");
	enum sess_action a = reply(s, 220, "2.0.0 Ready to start TLS");
	return a == SA_CONTINUE ? SA_STARTTLS : a;
}

/* See session.h. */
void session_tls_started(struct session *s, const struct sess_tls *t)
{
	const struct tls_info *i = t->info;

	s->tls = true;
	sess_enter_state(s, ST_GREET);
	snprintf(s->tls_log, sizeof s->tls_log, "%s/%s", i->version, i->cipher);
	if (i->peer_verified)
		log_esc(i->peer_id, strlen(i->peer_id), s->cert_log, sizeof s->cert_log);
	char why[LOG_ESC_SIZE];
	log_esc_text(i->peer_why, strlen(i->peer_why), why, sizeof why);
	log_msg(LOG_INFO, "TLS from %s: %s%s, %s%s%s", s->peer, s->tls_log, i->resumed ? " (resumed)" : "",
		i->peer_verified ? "client certificate " : i->peer_cert ? "client certificate not verified: " :
		"no client certificate", i->peer_verified ? s->cert_log : i->peer_cert ? why : "", "");
	if (s->auth != NULL && auth_tls(s->auth, i->bits, i->peer_verified ? i->peer_id : NULL,
					t->cb_name, t->cb, t->cb_len) != AUTH_OK)
		log_msg(LOG_ERR, "SASL with TLS properties: %s", auth_why(s->auth));
}

/* QUIT: 221 in every state. */
static enum sess_action cmd_quit(struct session *s, const char *arg)
{
	(void)arg;
	sess_enter_state(s, ST_DONE);
	return reply(s, 221, "%s closing connection", sess_name(s));
}

/* NOOP and RSET: nothing to reset before the turn. */
static enum sess_action cmd_noop(struct session *s, const char *arg)
{
	(void)arg;
	return reply(s, 250, "OK");
}

/* True if MECH is one of the advertised names (the allow-list libsasl2 is shielded by). */
static bool sess_mech_advertised(const struct session *s, const char *mech)
{
	const char *list = auth_mechs(s->auth);
	size_t n = strlen(mech);

	if (n == 0 || n > AUTH_MECH_MAX)
		return false;
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, " ");
		if (k == n && strncasecmp(p, mech, n) == 0)
			return true;
		p += k;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Decode one RFC 4954 base64 response ("=" is empty); false if it is not base64. */
static bool sess_decode(struct session *s, const char *b64, unsigned *len)
{
	if (strcmp(b64, "=") == 0) {
		*len = 0;
		return true;
	}
	size_t n = strlen(b64);
	if (n == 0 || n % 4 != 0)
		return false;
	return auth_decode64(b64, (unsigned)n, s->sasl_buf, sizeof s->sasl_buf, len) == 0;
}

/*
 * Every unsuccessful end of an AUTH exchange: logged with WHY (NULL: libsasl2's reason), 535s
 * counted with the same delay whatever the cause, and back to ST_READY with a fresh SASL context.
 */
static enum sess_action sess_auth_failed(struct session *s, int code, const char *text, const char *why)
{
	const char *tried = auth_tried(s->auth);
	log_msg(LOG_NOTICE, "AUTH %s failed from %s user=%s: %d %s", s->mech, s->peer, tried ? tried : "-",
		code, why ? why : auth_why(s->auth));
	if (code == 535) {
		s->auth_failures++;
		s->io.pause(s->io.ctx, s->cf->auth_fail_delay_ms);
	}
	bool fresh = sess_enter_state(s, ST_READY);
	enum sess_action a = reply(s, code, "%s", text);
	if (a != SA_CONTINUE)
		return a;
	if (s->auth_failures >= s->cf->max_auth_failures) {
		log_msg(LOG_NOTICE, "%u failed AUTH from %s; closing", s->auth_failures, s->peer);
		return reply(s, 421, "%s Too many authentication failures", sess_name(s));
	}
	if (!fresh) {
		log_msg(LOG_ERR, "SASL reset failed: %s", auth_why(s->auth));
		return reply(s, 421, "%s Authentication service unavailable", sess_name(s));
	}
	return SA_CONTINUE;
}

/* Act on what libsasl2 said about the last message. */
static enum sess_action sess_auth_result(struct session *s, enum auth_rc rc, const char *out,
					 unsigned outlen)
{
	char b64[AUTH_B64_MAX + 1];
	unsigned b64len = 0;

	switch (rc) {
	case AUTH_OK:
	case AUTH_CONTINUE:
		if (rc == AUTH_OK && outlen == 0) {
			const char *user = auth_user(s->auth);
			if (user == NULL)
				return sess_auth_failed(s, 454, "Temporary authentication failure", NULL);
			if (strlen(user) >= sizeof s->user)
				return sess_auth_failed(s, 535, "Authentication credentials invalid", NULL);
			snprintf(s->user, sizeof s->user, "%s", user);
			log_esc(user, strlen(user), s->user_log, sizeof s->user_log);
			/* Nothing SASL is needed after 235 (no security layer): a failed reset is moot. */
			sess_enter_state(s, ST_AUTHED);
			log_msg(LOG_INFO, "AUTH %s ok from %s: user=%s", s->mech, s->peer, s->user_log);
			return reply(s, 235, "Authentication successful");
		}
		if (outlen > 0 && auth_encode64(out, outlen, b64, sizeof b64, &b64len) != 0)
			return sess_auth_failed(s, 454, "Temporary authentication failure", NULL);
		b64[b64len] = '\0';
		s->auth_final = rc == AUTH_OK;
		return reply(s, 334, "%s", b64);
	case AUTH_NOMECH:
		return sess_auth_failed(s, 504, "Unrecognized authentication type", NULL);
	case AUTH_SYNTAX:
		return sess_auth_failed(s, 501, "Syntax error in AUTH parameters", NULL);
	case AUTH_TEMP:
		return sess_auth_failed(s, 454, "Temporary authentication failure", NULL);
	case AUTH_FAIL:
		break;
	}
	return sess_auth_failed(s, 535, "Authentication credentials invalid", NULL);
}

/* AUTH mechanism [initial-response] (RFC 4954). */
static enum sess_action cmd_auth(struct session *s, const char *arg)
{
	const char *out;
	unsigned outlen, inlen = 0;
	char mech[AUTH_MECH_MAX + 1];

	if (s->auth == NULL)
		return reply(s, 454, "Temporary authentication failure");
	if (arg == NULL || *arg == '\0' || *arg == ' ')
		return reply(s, 501, "Syntax: AUTH mechanism [initial-response]");
	size_t n = strcspn(arg, " ");
	const char *ir = arg[n] == ' ' ? arg + n + 1 : NULL;
	if (n <= AUTH_MECH_MAX) {
		for (size_t i = 0; i <= n; i++)
			mech[i] = i < n ? (char)toupper((unsigned char)arg[i]) : '\0';
	}
	if (n <= AUTH_MECH_MAX && !strcmp(mech, "EXTERNAL") && !sess_mech_advertised(s, mech) &&
	    auth_listed(s->auth, mech)) {
		/* Listed but not offered: no verified client certificate. A failed AUTH, not a 504. */
		snprintf(s->mech, sizeof s->mech, "%s", mech);
		return sess_auth_failed(s, 535, "5.7.8 Authentication credentials invalid",
					"no verified client certificate");
	}
	if (n > AUTH_MECH_MAX || !sess_mech_advertised(s, mech)) {
		char esc[64];
		log_msg(LOG_NOTICE, "AUTH with unadvertised mechanism %s from %s",
			log_esc(arg, n, esc, sizeof esc), s->peer);
		return reply(s, 504, "Unrecognized authentication type");
	}
	/* The exchange begins: from here every way out goes through sess_enter_state(). */
	snprintf(s->mech, sizeof s->mech, "%s", mech);
	sess_enter_state(s, ST_AUTH);
	if (ir != NULL && (strchr(ir, ' ') != NULL || !sess_decode(s, ir, &inlen)))
		return sess_auth_failed(s, 501, "Invalid base64 in initial response",
					"invalid base64 in the initial response");
	enum auth_rc rc = auth_start(s->auth, mech, ir ? s->sasl_buf : NULL, inlen, &out, &outlen);
	return sess_auth_result(s, rc, out, outlen);
}

/* One line inside a SASL exchange: a response, "*" to cancel, or the empty final acknowledgement. */
static enum sess_action sess_auth_line(struct session *s, const char *line)
{
	const char *out;
	unsigned outlen, inlen;

	if (strcmp(line, "*") == 0)
		return sess_auth_failed(s, 501, "Authentication cancelled", "cancelled by the client");
	if (s->auth_final) {
		if (*line != '\0')
			return sess_auth_failed(s, 535, "Authentication credentials invalid", NULL);
		return sess_auth_result(s, AUTH_OK, NULL, 0);
	}
	if (*line == '\0') {
		inlen = 0;  /* an empty line is an empty response (RFC 4954 4) */
	} else if (!sess_decode(s, line, &inlen)) {
		return sess_auth_failed(s, 501, "Invalid base64 in AUTH response", "invalid base64 in a response");
	}
	enum auth_rc rc = auth_step(s->auth, s->sasl_buf, inlen, &out, &outlen);
	return sess_auth_result(s, rc, out, outlen);
}

/* Reply for an ATRN refusal, logged with the reason. */
static enum sess_action sess_atrn_refuse(struct session *s, int code, const char *text, const char *why)
{
	strcpy(s->granted, "-");
	log_msg(code == 451 ? LOG_ERR : LOG_NOTICE, "ATRN from %s user=%s asked=%s: %d %s",
		s->peer, s->user_log, s->asked, code, why);
	return reply(s, code, "%s", text);
}

/* ATRN [domain,...] (RFC 2645 5.2.1). */
static enum sess_action cmd_atrn(struct session *s, const char *arg)
{
	struct dom_list asked, mine, *grant;
	char why[512];
	enum sess_action a;

	if (arg != NULL && *arg == '\0')
		return reply(s, 501, "Syntax: ATRN [domain[,domain]...]");
	switch (dom_parse_atrn(arg ? arg : "", s->cf->max_domains, &asked)) {
	case DOM_OK:
		break;
	case DOM_TOO_MANY:
		return reply(s, 501, "Too many domains (at most %u)", s->cf->max_domains);
	default:
		log_esc(arg, strlen(arg), why, sizeof why);
		log_msg(LOG_NOTICE, "ATRN syntax error from %s: %s", s->peer, why);
		return reply(s, 501, "Syntax: ATRN [domain[,domain]...]");
	}
	dom_join(&asked, s->asked, sizeof s->asked);
	if (asked.n == 0)
		strcpy(s->asked, "*");
	if (s->tls && s->cf->mta == CF_MTA_EXEC) {
		/* The program would get the raw socket and speak plaintext into the TLS session. */
		dom_free(&asked);
		return sess_atrn_refuse(s, 451, "Unable to process ATRN request now",
					"mta = exec cannot run under TLS");
	}
	switch (dom_lookup(s->cf->customer_map, s->user, s->cf->sasl_realm, &mine, why, sizeof why)) {
	case DOM_OK:
		break;
	case DOM_NOUSER:
		dom_free(&asked);
		return sess_atrn_refuse(s, 450, "ATRN request refused", "user not in customer map");
	default:
		dom_free(&asked);
		return sess_atrn_refuse(s, 451, "Unable to process ATRN request now", why);
	}
	grant = asked.n ? &asked : &mine;
	for (size_t i = 0; i < asked.n; i++)
		if (!dom_contains(&mine, asked.v[i])) {
			snprintf(why, sizeof why, "domain %s not this customer's", asked.v[i]);
			dom_free(&asked);
			dom_free(&mine);
			return sess_atrn_refuse(s, 450, "ATRN request refused", why);
		}
	dom_join(grant, s->granted, sizeof s->granted);
	why[0] = '\0';
	enum ho_status hs = HO_TEMPFAIL;
	bool early = s->io.pending(s->io.ctx) != 0;
	if (!early)
		hs = handoff_prepare(s->cf, s->user, grant->v, grant->n, &s->ho, why, sizeof why);
	dom_free(&asked);
	dom_free(&mine);
	if (early || (hs == HO_READY && s->io.pending(s->io.ctx))) {
		if (hs == HO_READY)
			handoff_abort(s->ho);
		s->ho = NULL;
		strcpy(s->granted, "-");
		log_msg(LOG_NOTICE, "%s sent data after ATRN; no handoff", s->peer);
		return reply(s, 554, "Data after ATRN: the customer must wait for the reply");
	}
	if (hs == HO_READY) {
		hs = handoff_start(s->ho, why, sizeof why);
		if (hs != HO_READY)
			s->ho = NULL;
	}
	switch (hs) {
	case HO_READY:
		break;
	case HO_NOMAIL:
		return sess_atrn_refuse(s, 453, "You have no mail", "no mail queued");
	case HO_BUSY:
		return sess_atrn_refuse(s, 450, "ATRN request refused, try again later", why);
	default:
		return sess_atrn_refuse(s, 451, "Unable to process ATRN request now", why);
	}
	sess_enter_state(s, ST_DONE);
	a = reply(s, 250, "OK now reversing the connection");
	if (a != SA_CONTINUE) {
		handoff_abort(s->ho);
		s->ho = NULL;
		return SA_CLOSE;
	}
	log_msg(LOG_INFO, "ATRN from %s user=%s granted=%s: reversing", s->peer, s->user_log, s->granted);
	return SA_HANDOFF;
}

/* Find the command and check its state before any handler runs. */
static enum sess_action sess_dispatch(struct session *s, const char *line)
{
	char verb[12];
	size_t n = strcspn(line, " ");
	const char *arg = line[n] == ' ' ? line + n + 1 : NULL;

	for (const char *p = line; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return reply(s, 500, "8-bit characters not allowed in commands");
	if (n == 0 || n >= sizeof verb)
		return reply(s, 502, "Command not implemented");
	for (size_t i = 0; i <= n; i++)
		verb[i] = i < n ? (char)toupper((unsigned char)line[i]) : '\0';
	for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++) {
		const struct cmd *c = &cmd_table[i];
		if (strcmp(verb, c->name))
			continue;
		enum sess_action a;
		s->in_atrn = c->fn == cmd_atrn;
		if (!(c->states & s->state)) {
			a = reply(s, c->oos_code, "%s", c->oos_text);
		} else if (c->tls == CT_PLAIN && s->tls) {
			a = reply(s, 503, "5.5.1 TLS already active");
		} else if ((c->tls == CT_AUTH && sess_auth_needs_tls(s)) ||
			   (c->tls == CT_ENCRYPT && !s->tls && s->cf->tls_security_level == CF_TLS_ENCRYPT)) {
			a = reply(s, 530, "5.7.0 Must issue a STARTTLS command first");
		} else if ((c->junk & s->state) && ++s->junk > s->cf->junk_command_limit) {
			log_msg(LOG_NOTICE, "%u commands without progress (NOOP, RSET, EHLO again) from %s; closing",
				s->junk, s->peer);
			a = reply(s, 421, "%s Too many commands without progress, closing connection",
				  sess_name(s));
		} else {
			a = c->fn(s, arg);
		}
		s->in_atrn = false;
		return a;
	}
	return reply(s, 502, "Command not implemented");
}

/*
 * The longest line allowed next, CRLF included: RFC 5321's 512 for a command; RFC 4954's 12288
 * octets of base64 for a SASL response, and for an initial response after "AUTH mechanism ".
 */
static size_t sess_limit(const struct session *s)
{
	const char *p = lb_peek(&s->lb);
	size_t n = lb_pending(&s->lb), m = 0;

	if (s->state == ST_AUTH)
		return AUTH_B64_MAX + 2;
	if (n < 5 || strncasecmp(p, "AUTH ", 5) != 0)
		return LB_CMD_LIMIT;
	while (5 + m < n && p[5 + m] != ' ' && p[5 + m] != '\r' && m <= AUTH_MECH_MAX)
		m++;
	if (m > AUTH_MECH_MAX)
		return LB_CMD_LIMIT;  /* no mechanism name: an ordinary command line */
	if (5 + m == n)
		m = AUTH_MECH_MAX;    /* the name is still arriving: allow the longest */
	return 5 + m + 1 + AUTH_B64_MAX + 2;
}

/* A framing error: the stream cannot be resynchronised, so 500 and the session is over. */
static enum sess_action sess_fatal(struct session *s, const char *text)
{
	reply(s, 500, "%s", text);
	sess_enter_state(s, ST_DONE);
	return SA_CLOSE;
}

/* Process every complete line now buffered. */
static enum sess_action sess_lines(struct session *s)
{
	char *line;
	size_t len;
	enum sess_action a = SA_CONTINUE;

	while (a == SA_CONTINUE) {
		enum lb_status st = lb_get(&s->lb, sess_limit(s), &line, &len);
		switch (st) {
		case LB_MORE:
			return SA_CONTINUE;
		case LB_LINE:
			break;
		case LB_TOO_LONG:
			log_msg(LOG_NOTICE, "over-long line from %s", s->peer);
			return sess_fatal(s, "Line too long");
		default:
			log_msg(LOG_NOTICE, "bad line ending or NUL from %s", s->peer);
			return sess_fatal(s, "Syntax error: lines must end in CRLF and contain no NUL");
		}
		if (lb_pending(&s->lb) > 0) {
			log_msg(LOG_NOTICE, "%s sent a command without waiting for the reply", s->peer);
			strcpy(s->granted, "-");
			return reply(s, 554, "Pipelining not allowed: wait for each reply");
		}
		a = s->state == ST_AUTH ? sess_auth_line(s, line) : sess_dispatch(s, line);
	}
	return a;
}

/* See session.h. */
enum sess_action session_input(struct session *s, const char *buf, size_t len)
{
	if (s->state == ST_DONE)
		return SA_CLOSE;
	while (len > 0) {
		size_t k = lb_put(&s->lb, buf, len);
		buf += k;
		len -= k;
		enum sess_action a = sess_lines(s);
		if (a != SA_CONTINUE)
			return a;
		if (k == 0) {
			log_msg(LOG_NOTICE, "over-long line from %s", s->peer);
			return sess_fatal(s, "Line too long");
		}
	}
	return SA_CONTINUE;
}

/* See session.h. */
enum sess_action session_eof(struct session *s)
{
	if (s->state != ST_DONE)
		log_msg(LOG_INFO, "%s disconnected without QUIT", s->peer);
	if (s->result == NULL)
		s->result = "lost";
	return SA_CLOSE;
}

/* See session.h. */
enum sess_action session_timeout(struct session *s, int idle)
{
	log_msg(LOG_NOTICE, "%s timeout for %s", idle ? "idle" : "session", s->peer);
	return reply(s, 421, "%s Timeout, closing connection", sess_name(s));
}

/* See session.h. */
struct handoff *session_take_handoff(struct session *s)
{
	struct handoff *h = s->ho;
	s->ho = NULL;
	return h;
}

/* See session.h. */
void session_set_result(struct session *s, const char *result)
{
	s->result = result;
}

/* See session.h. */
void session_free(struct session *s)
{
	if (s == NULL)
		return;
	if (s->ho != NULL)
		handoff_abort(s->ho);
	char atrn[8] = "-";
	if (s->atrn_code)
		snprintf(atrn, sizeof atrn, "%d", s->atrn_code);
	log_msg(LOG_INFO, "session peer=%s helo=%s user=%s mech=%s asked=%s granted=%s atrn=%s code=%d "
		"result=%s tls=%s cert=%s", s->peer, s->helo, s->user_log, s->mech, s->asked, s->granted,
		atrn, s->last_code, s->result ? s->result : "-", s->tls_log, s->cert_log);
	free(s);
}
