/*
 * fake_auth.c - auth.h for the fuzzer: a deterministic fake SASL layer with a few fixed mechanisms
 * that react to the decoded client response (see fuzz_fakes.h for the table), so the fuzzer can
 * reach the authenticated state by sending base64("alice"). No libsasl2 calls, no files, no sleep.
 * It also checks the session core's side of the auth.h contract: auth_start only on a fresh or reset
 * context and only with an advertised mechanism, auth_step only inside an exchange, auth_user only
 * after AUTH_OK.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_fakes.h"
#include "linebuf.h"

enum fz_phase { FZ_IDLE, FZ_CONT, FZ_OK, FZ_FAILED };

struct auth {
	enum fz_phase phase;
	const char *user;
	enum auth_rc reset_rc;
	const char *last_out;
	unsigned last_outlen;
	char out[LB_SIZE];
};

static struct auth fz_auth_obj;
static char fz_long_user[301];
static char fz_big[10000];

/* See fuzz_fakes.h. */
void fz_auth_begin(enum auth_rc reset_rc)
{
	fz_auth_obj.phase = FZ_IDLE;
	fz_auth_obj.user = NULL;
	fz_auth_obj.reset_rc = reset_rc;
	fz_auth_obj.last_out = NULL;
	fz_auth_obj.last_outlen = 0;
	if (fz_long_user[0] == '\0') {
		memset(fz_long_user, 'x', sizeof fz_long_user - 1);
		memset(fz_big, 'B', sizeof fz_big);
	}
}

/* See fuzz_fakes.h. */
const char *fz_auth_last_out(unsigned *len)
{
	*len = fz_auth_obj.last_outlen;
	return fz_auth_obj.last_out;
}

/* auth.h's auth_open, faked for the fuzzer (fuzz_fakes.h). */
struct auth *auth_open(const struct config *cf, const char *local, const char *remote,
		       char *err, size_t errlen)
{
	(void)cf;
	(void)local;
	(void)remote;
	if (errlen)
		err[0] = '\0';
	return &fz_auth_obj;
}

/* auth.h's auth_ready, faked for the fuzzer (fuzz_fakes.h). */
int auth_ready(struct auth *a, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	FZ_CHECK(a == &fz_auth_obj);
	return 0;
}

/* auth.h's auth_mechs, faked for the fuzzer (fuzz_fakes.h). */
const char *auth_mechs(const struct auth *a)
{
	FZ_CHECK(a == &fz_auth_obj);
	return FZ_AUTH_MECHS;
}

/* Record and return RC with OUT (LEN octets) as the server's data. */
static enum auth_rc fz_ret(struct auth *a, enum auth_rc rc, const char *data, unsigned len,
			   const char **out, unsigned *outlen)
{
	a->last_out = data;
	a->last_outlen = len;
	*out = data;
	*outlen = len;
	switch (rc) {
	case AUTH_OK:
		a->phase = FZ_OK;
		break;
	case AUTH_CONTINUE:
		a->phase = FZ_CONT;
		break;
	default:
		a->phase = FZ_FAILED;
		a->user = NULL;
		break;
	}
	return rc;
}

/* Evaluate one decoded client response. */
static enum auth_rc fz_respond(struct auth *a, const char *in, unsigned inlen, const char **out,
			       unsigned *outlen)
{
#define IS(s) (inlen == sizeof(s) - 1 && memcmp(in, s, inlen) == 0)
	static const char *const users[] = { "alice", "alice@example.org", "bob", "carol" };

	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		if (inlen == strlen(users[i]) && memcmp(in, users[i], inlen) == 0) {
			a->user = users[i];
			return fz_ret(a, AUTH_OK, NULL, 0, out, outlen);
		}
	if (IS("final")) {
		a->user = "alice";
		return fz_ret(a, AUTH_OK, "welcome", 7, out, outlen);
	}
	if (IS("more"))
		return fz_ret(a, AUTH_CONTINUE, "more?", 5, out, outlen);
	if (IS("empty"))
		return fz_ret(a, AUTH_CONTINUE, NULL, 0, out, outlen);
	if (inlen >= 5 && memcmp(in, "echo:", 5) == 0) {
		unsigned n = inlen - 5;
		memcpy(a->out, in + 5, n);
		return fz_ret(a, AUTH_CONTINUE, a->out, n, out, outlen);
	}
	if (IS("big"))
		return fz_ret(a, AUTH_CONTINUE, fz_big, sizeof fz_big, out, outlen);
	if (IS("nouser")) {
		a->user = NULL;
		return fz_ret(a, AUTH_OK, NULL, 0, out, outlen);
	}
	if (IS("longuser")) {
		a->user = fz_long_user;
		return fz_ret(a, AUTH_OK, NULL, 0, out, outlen);
	}
	if (IS("temp"))
		return fz_ret(a, AUTH_TEMP, NULL, 0, out, outlen);
	if (IS("syntax"))
		return fz_ret(a, AUTH_SYNTAX, NULL, 0, out, outlen);
	if (IS("nomech"))
		return fz_ret(a, AUTH_NOMECH, NULL, 0, out, outlen);
	return fz_ret(a, AUTH_FAIL, NULL, 0, out, outlen);
#undef IS
}

/* auth.h's auth_start, faked for the fuzzer (fuzz_fakes.h). */
enum auth_rc auth_start(struct auth *a, const char *mech, const char *in, unsigned inlen,
			const char **out, unsigned *outlen)
{
	FZ_CHECK(a == &fz_auth_obj);
	/* A new exchange only on a fresh or reset context. */
	FZ_CHECK(a->phase == FZ_IDLE);
	FZ_CHECK(in != NULL || inlen == 0);
	if (!strcmp(mech, "X-NOMECH"))
		return fz_ret(a, AUTH_NOMECH, NULL, 0, out, outlen);
	if (!strcmp(mech, "X-TEMP"))
		return fz_ret(a, AUTH_TEMP, NULL, 0, out, outlen);
	if (!strcmp(mech, "CRAM-MD5")) {
		if (in != NULL)
			return fz_ret(a, AUTH_SYNTAX, NULL, 0, out, outlen);
		return fz_ret(a, AUTH_CONTINUE, FZ_CRAM_CHALLENGE, sizeof FZ_CRAM_CHALLENGE - 1, out,
			      outlen);
	}
	/* Only advertised names reach libsasl2: anything else here is a session bug. */
	FZ_CHECK(!strcmp(mech, "FAKE"));
	if (in == NULL)
		return fz_ret(a, AUTH_CONTINUE, NULL, 0, out, outlen);
	return fz_respond(a, in, inlen, out, outlen);
}

/* auth.h's auth_step, faked for the fuzzer (fuzz_fakes.h). */
enum auth_rc auth_step(struct auth *a, const char *in, unsigned inlen,
		       const char **out, unsigned *outlen)
{
	FZ_CHECK(a == &fz_auth_obj);
	FZ_CHECK(a->phase == FZ_CONT);
	FZ_CHECK(in != NULL || inlen == 0);
	return fz_respond(a, in, inlen, out, outlen);
}

/* auth.h's auth_user, faked for the fuzzer (fuzz_fakes.h). */
const char *auth_user(const struct auth *a)
{
	FZ_CHECK(a == &fz_auth_obj);
	FZ_CHECK(a->phase == FZ_OK);
	return a->user;
}

/* auth.h's auth_why, faked for the fuzzer (fuzz_fakes.h). */
const char *auth_why(const struct auth *a)
{
	FZ_CHECK(a == &fz_auth_obj);
	return "fake mechanism said no";
}

/* auth.h's auth_tried, faked for the fuzzer (fuzz_fakes.h). */
const char *auth_tried(const struct auth *a)
{
	FZ_CHECK(a == &fz_auth_obj);
	return a->phase == FZ_IDLE ? NULL : "fz\\x0auser";
}

/* auth.h's auth_listed, faked for the fuzzer (fuzz_fakes.h). */
bool auth_listed(const struct auth *a, const char *mech)
{
	FZ_CHECK(a == &fz_auth_obj);
	return strcmp(mech, "EXTERNAL") == 0;   /* listed, never advertised: 535 */
}

enum auth_rc auth_reset(struct auth *a);

/* auth.h's auth_tls, faked for the fuzzer (fuzz_fakes.h). */
enum auth_rc auth_tls(struct auth *a, unsigned ssf, const char *external_id, const char *cb_name,
		      const unsigned char *cb, size_t cb_len)
{
	(void)ssf;
	(void)external_id;
	(void)cb_name;
	(void)cb;
	(void)cb_len;
	FZ_CHECK(a == &fz_auth_obj);
	/* TLS starts only before AUTH (STARTTLS is refused in and after an exchange). */
	FZ_CHECK(a->phase != FZ_CONT && a->phase != FZ_OK);
	return auth_reset(a);
}

/* auth.h's auth_reset, faked for the fuzzer (fuzz_fakes.h). */
enum auth_rc auth_reset(struct auth *a)
{
	FZ_CHECK(a == &fz_auth_obj);
	a->phase = FZ_IDLE;
	a->user = NULL;
	a->last_out = NULL;
	a->last_outlen = 0;
	return a->reset_rc;
}

/* auth.h's auth_close, faked for the fuzzer (fuzz_fakes.h). */
void auth_close(struct auth *a)
{
	if (a != NULL)
		FZ_CHECK(a == &fz_auth_obj);
}
