/*
 * fake_auth.c - auth.h without libsasl2, scripted through the global fake_auth (see unit.h):
 * auth_start and each auth_step return the next scripted answer; calls, resets and the last
 * mechanism and decoded input are recorded for the session tests.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "unit.h"

struct auth {
	int unused;
};

static struct auth fake_auth_obj;
struct fake_auth_state fake_auth;

/* See unit.h. */
void fake_auth_init(void)
{
	memset(&fake_auth, 0, sizeof fake_auth);
	fake_auth.mechs = "CRAM-MD5 PLAIN";
	fake_auth.user = "alice@example.net";
	fake_auth.reset_rc = AUTH_OK;
}

/* auth.h's auth_open, faked: scripted through fake_auth (unit.h). */
struct auth *auth_open(const struct config *cf, const char *local, const char *remote,
		       char *err, size_t errlen)
{
	(void)cf;
	(void)local;
	(void)remote;
	if (errlen)
		err[0] = '\0';
	fake_auth.n_open++;
	return &fake_auth_obj;
}

/* auth.h's auth_ready, faked: scripted through fake_auth (unit.h). */
int auth_ready(struct auth *a, char *err, size_t errlen)
{
	(void)a;
	fake_auth.n_ready++;
	if (fake_auth.ready_err == NULL)
		return 0;
	snprintf(err, errlen, "%s", fake_auth.ready_err);
	return -1;
}

/* auth.h's auth_mechs, faked: scripted through fake_auth (unit.h). */
const char *auth_mechs(const struct auth *a)
{
	(void)a;
	return fake_auth.n_tls && fake_auth.mechs_tls ? fake_auth.mechs_tls : fake_auth.mechs;
}

/* auth.h's auth_listed, faked: scripted through fake_auth (unit.h). */
bool auth_listed(const struct auth *a, const char *mech)
{
	(void)a;
	const char *l = fake_auth.mechs_tls ? fake_auth.mechs_tls : fake_auth.mechs;
	const char *p = strstr(l, mech);
	size_t n = strlen(mech);
	return p != NULL && (p == l || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ');
}

/* auth.h's auth_tls, faked: scripted through fake_auth (unit.h). */
enum auth_rc auth_tls(struct auth *a, unsigned ssf, const char *external_id, const char *cb_name,
		      const unsigned char *cb, size_t cb_len)
{
	(void)a;
	(void)cb;
	fake_auth.n_tls++;
	fake_auth.tls_ssf = ssf;
	snprintf(fake_auth.tls_external, sizeof fake_auth.tls_external, "%s", external_id ? external_id : "");
	snprintf(fake_auth.tls_cb_name, sizeof fake_auth.tls_cb_name, "%s", cb_name ? cb_name : "");
	fake_auth.tls_cb_len = cb_len;
	return AUTH_OK;
}

/* The next scripted answer. */
static enum auth_rc fake_next(const char *in, unsigned inlen, const char **out, unsigned *outlen)
{
	fake_auth.in_null = in == NULL;
	fake_auth.inlen = inlen;
	if (in != NULL && inlen < sizeof fake_auth.in) {
		memcpy(fake_auth.in, in, inlen);
		fake_auth.in[inlen] = '\0';
	}
	*out = NULL;
	*outlen = 0;
	if (fake_auth.pos >= fake_auth.nseq || fake_auth.pos >= FAKE_AUTH_STEPS)
		return AUTH_FAIL;
	const struct fake_auth_ret *r = &fake_auth.seq[fake_auth.pos++];
	*out = r->out;
	*outlen = r->outlen;
	return r->rc;
}

/* auth.h's auth_start, faked: scripted through fake_auth (unit.h). */
enum auth_rc auth_start(struct auth *a, const char *mech, const char *in, unsigned inlen,
			const char **out, unsigned *outlen)
{
	(void)a;
	fake_auth.n_start++;
	snprintf(fake_auth.mech, sizeof fake_auth.mech, "%s", mech);
	return fake_next(in, inlen, out, outlen);
}

/* auth.h's auth_step, faked: scripted through fake_auth (unit.h). */
enum auth_rc auth_step(struct auth *a, const char *in, unsigned inlen,
		       const char **out, unsigned *outlen)
{
	(void)a;
	fake_auth.n_step++;
	return fake_next(in, inlen, out, outlen);
}

/* auth.h's auth_user, faked: scripted through fake_auth (unit.h). */
const char *auth_user(const struct auth *a)
{
	(void)a;
	return fake_auth.user;
}

/* auth.h's auth_why, faked: scripted through fake_auth (unit.h). */
const char *auth_why(const struct auth *a)
{
	(void)a;
	return "fake";
}

/* auth.h's auth_tried, faked: scripted through fake_auth (unit.h). */
const char *auth_tried(const struct auth *a)
{
	(void)a;
	return fake_auth.tried;
}

/* auth.h's auth_reset, faked: scripted through fake_auth (unit.h). */
enum auth_rc auth_reset(struct auth *a)
{
	(void)a;
	fake_auth.n_reset++;
	return fake_auth.reset_rc;
}

/* auth.h's auth_close, faked: scripted through fake_auth (unit.h). */
void auth_close(struct auth *a)
{
	(void)a;
	fake_auth.n_close++;
}
