/*
 * auth.h - SMTP AUTH (RFC 4954) mechanisms through Cyrus SASL. The session core sees only this
 * interface, so tests and the fuzzer can link a fake behind it.
 */
#ifndef ODMRD_AUTH_H
#define ODMRD_AUTH_H

#include <stdbool.h>
#include "config.h"

enum auth_rc {
	AUTH_OK,        /* authenticated: 235 */
	AUTH_CONTINUE,  /* send the challenge in a 334 */
	AUTH_FAIL,      /* bad credentials or unknown user alike: 535 */
	AUTH_NOMECH,    /* mechanism not offered: 504 */
	AUTH_SYNTAX,    /* protocol misuse, e.g. initial response to a server-first mechanism: 501 */
	AUTH_TEMP       /* backend trouble: 454 */
};

/* Longest mechanism name (RFC 4422 3.1). */
#define AUTH_MECH_MAX 20
/*
 * Longest SASL message on the wire: 12288 octets of base64, CRLF not counted (RFC 4954 4; the
 * way Postfix's smtpd_sasl_response_limit counts it), in a response line or an initial response.
 */
#define AUTH_B64_MAX 12288

struct auth;

/*
 * Record the settings for this connection; libsasl2 is not touched yet (see auth_ready).
 * local/remote: "ip;port" strings or NULL. On failure: NULL and a reason in err.
 */
struct auth *auth_open(const struct config *cf, const char *local, const char *remote,
		       char *err, size_t errlen);
/*
 * Initialise libsasl2 (once per process: it loads the plugins), open the SASL connection and
 * build the advertised list; a no-op once it succeeded. The session calls it at the first EHLO,
 * so a connection that never gets there costs no SASL start-up. 0, or -1 and a reason in err.
 * An empty list is an error unless tls_cert_file is set and sasl_mech_list names a mechanism
 * offered only under TLS (PLAIN, LOGIN, EXTERNAL, *-PLUS): then EHLO just offers no AUTH yet.
 */
int auth_ready(struct auth *a, char *err, size_t errlen);
/* The advertised mechanisms, space separated, upper case; never ANONYMOUS; "" before auth_ready. */
const char *auth_mechs(const struct auth *a);
/* True if the admin listed MECH in sasl_mech_list (advertised or not, e.g. EXTERNAL). */
bool auth_listed(const struct auth *a, const char *mech);
/* Begin MECH (already checked against auth_mechs) with an optional decoded initial response. */
enum auth_rc auth_start(struct auth *a, const char *mech, const char *in, unsigned inlen,
			const char **out, unsigned *outlen);
/* Feed one decoded client response. */
enum auth_rc auth_step(struct auth *a, const char *in, unsigned inlen,
		       const char **out, unsigned *outlen);
/* The authenticated user as libsasl2 reports it (e.g. "alice@realm"), after AUTH_OK. */
const char *auth_user(const struct auth *a);
/* A one-line reason for the last failure, safe to log (never a secret). */
const char *auth_why(const struct auth *a);
/*
 * Base64 (RFC 4648) of SASL messages, through libsasl2's codec, so the session core needs no
 * SASL header. Encode INLEN octets of IN into OUT (OUTMAX octets, room for the NUL included):
 * 0, or -1 if it does not fit.
 */
int auth_encode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen);
/* Decode INLEN octets of base64 IN into OUT (OUTMAX octets): 0, or -1 if IN is not base64 or too big. */
int auth_decode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen);
/* The login name the client gave in this exchange, escaped for the log; NULL if none yet. */
const char *auth_tried(const struct auth *a);
/*
 * For odmrd -t: can the password store be read (libsasl2 looks up a user that does not exist and
 * must answer "no such user")? 0, or -1 and the reason in err.
 */
int auth_check_store(struct auth *a, char *err, size_t errlen);
/*
 * TLS is up: SSF (the cipher's key bits) becomes SASL_SSF_EXTERNAL; EXTERNAL_ID (the verified
 * client certificate's identity, NULL: none) is offered to EXTERNAL; CB_NAME/CB (NULL: none) is the
 * channel binding for the -PLUS mechanisms. Starts a fresh SASL exchange and rebuilds the
 * advertised list (PLAIN and LOGIN, when listed, only from now on). Before auth_ready (STARTTLS
 * before the first EHLO) the properties are only recorded; auth_ready applies them.
 */
enum auth_rc auth_tls(struct auth *a, unsigned ssf, const char *external_id, const char *cb_name,
		      const unsigned char *cb, size_t cb_len);
/* Drop the current exchange and start a fresh SASL connection (after any failure). */
enum auth_rc auth_reset(struct auth *a);
void auth_close(struct auth *a);

#endif
