/*
 * auth.c - Cyrus SASL server side for odmrd.
 *
 * Trusts libsasl2 for the cryptography and the password store; trusts nothing the client sends
 * (mechanism names are checked against our own advertised list before libsasl2 sees them,
 * CVE-2019-19906). Invariants: ANONYMOUS is never offered; PLAIN and LOGIN only when the admin
 * lists them and only under TLS; EXTERNAL only with the identity of a verified client certificate
 * (libsasl2 offers it only then); -PLUS only with TLS channel binding; every failure leaves a
 * fresh connection, with the same TLS properties, for the next attempt; the user name a client
 * tried is kept only escaped, for the log. libsasl2 is set up (plugins loaded) only when a session
 * first needs it, at EHLO: odmrd runs once per connection.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "tls.h"

/*
 * Default mechanism list: CRAM-MD5, the one RFC 2645 requires and fetchmail uses. Not SCRAM:
 * libsasl2's SCRAM answers an unknown user's first message with a failure and a known user's
 * with a challenge, which tells a prober who exists; the admin may still list it.
 */
#define AUTH_DEFAULT_MECHS "CRAM-MD5"

struct auth {
	const struct config *cf;
	sasl_conn_t *conn;
	char *local, *remote;
	char mechs[256];      /* advertised, space separated */
	char why[256];        /* last failure, loggable */
	char backend_err[256];  /* the password store is unusable: every AUTH is a 454 */
	char tried[LOG_ESC_SIZE];  /* the login name of this exchange, escaped; "" if none yet */
	bool tried_authid;         /* tried holds the authentication id, not an authorization id */
	sasl_callback_t cb[5];
	sasl_callback_t conn_cb[2];
	/* TLS properties, applied to every sasl_conn (auth_tls) */
	bool ready;                /* auth_ready succeeded */
	bool tls;
	sasl_ssf_t ssf;
	char external[256];     /* EXTERNAL's identity, "" for none */
	sasl_channel_binding_t cbind;
	char cbname[16];
	unsigned char cbdata[TLS_CB_MAX];
};

static int auth_inited;
/* Our own references to the plugins libsasl2 loads (see auth_verifyfile), dropped after it. */
static void *auth_plugin_refs[16];
static size_t auth_n_plugin_refs;

/* SASL_CB_GETOPT: sasl_* config keys without the prefix; mech_list defaults to ours. */
static int auth_getopt(void *ctx, const char *plugin, const char *option,
		       const char **result, unsigned *len)
{
	const struct config *cf = ctx;

	(void)plugin;
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (!strcmp(cf->sasl_opts[i].key, option)) {
			*result = cf->sasl_opts[i].value;
			if (len)
				*len = (unsigned)strlen(*result);
			return SASL_OK;
		}
	if (!strcmp(option, "mech_list")) {
		*result = AUTH_DEFAULT_MECHS;
		if (len)
			*len = (unsigned)strlen(*result);
		return SASL_OK;
	}
	return SASL_FAIL;
}

/* SASL_CB_GETPATH: a private plugin directory, when configured, cuts start-up cost. */
static int auth_getpath(void *ctx, const char **path)
{
	const struct config *cf = ctx;

	*path = cf->sasl_plugin_dir;
	return SASL_OK;
}

/* Option VALUE of KEY as configured (sasl_KEY), or NULL. */
static const char *auth_opt(const struct config *cf, const char *key)
{
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (!strcmp(cf->sasl_opts[i].key, key))
			return cf->sasl_opts[i].value;
	return NULL;
}

/* "SCRAM-SHA-256" -> "scramsha256": the plugin files are named lib<this, shortened>.so. */
static size_t auth_squash(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < outlen; i++)
		if (isalnum((unsigned char)s[i]))
			out[o++] = (char)tolower((unsigned char)s[i]);
	out[o] = '\0';
	return o;
}

/* True if plugin NAME appears in the space/comma separated LIST (prefix either way). */
static int auth_plugin_listed(const char *list, const char *name)
{
	size_t nl = strlen(name);
	while (list && *list) {
		size_t n = strcspn(list, " \t,");
		char m[64];
		size_t ml = auth_squash(list, n, m, sizeof m);
		if (ml > 0 && !strncmp(m, name, ml < nl ? ml : nl))
			return 1;
		list += n;
		list += strspn(list, " \t,");
	}
	return 0;
}

/*
 * SASL_CB_VERIFYFILE: sasl_server_init dlopens every plugin in the directory (RTLD_NOW, three of
 * them pull in libcrypto) whatever mech_list says. Load only the mechanism plugins mech_list can
 * use and the auxprop plugin(s) named by auxprop_plugin (all known ones when it is unset).
 *
 * A plugin we let through is opened here first, with RTLD_LAZY, just before libsasl2 opens the
 * same file with RTLD_NOW: libsasl2's dlopen then finds it loaded and relocated and only counts a
 * reference. What that saves is the eager binding of the plugin's dependencies. The sasldb plugin
 * pulls in Berkeley DB (libdb-5.3: 1 304 PLT entries), and RTLD_NOW had ld.so look every one of
 * them up through the whole symbol scope, for every connection: 1 849 look-ups, nearly three
 * quarters of a session's instructions. Lazily, a whole session binds 716 (libdb's data
 * references, and the ~170 functions two sasldb look-ups call). Nothing is weakened: an object
 * linked with BIND_NOW (libsasl2's plugins themselves) is bound at once anyway, and an object
 * without it (libdb) keeps its PLT GOT outside RELRO in either mode.
 * It holds for any plugin set and needs no knowledge of what a plugin links; LD_BIND_NOW still
 * forces eager binding. The references are dropped in auth_close(), after sasl_server_done().
 */
static int auth_verifyfile(void *ctx, const char *file, sasl_verify_type_t type)
{
	const struct config *cf = ctx;
	const char *base = strrchr(file, '/');
	char name[64];

	if (type != SASL_VRFY_PLUGIN)
		return SASL_OK;
	base = base ? base + 1 : file;
	if (strncmp(base, "lib", 3) != 0)
		return SASL_OK;
	base += 3;
	auth_squash(base, strcspn(base, "."), name, sizeof name);
	const char *mechs = auth_opt(cf, "mech_list");
	const char *aux = auth_opt(cf, "auxprop_plugin");
	if (!auth_plugin_listed(mechs ? mechs : AUTH_DEFAULT_MECHS, name) &&
	    !auth_plugin_listed(aux ? aux : "sasldb sql ldapdb", name))
		return SASL_CONTINUE;
	if (auth_n_plugin_refs < sizeof auth_plugin_refs / sizeof auth_plugin_refs[0]) {
		/* A failure here is libsasl2's to report: its own dlopen fails the same way. */
		void *h = dlopen(file, RTLD_LAZY | RTLD_LOCAL);
		if (h != NULL)
			auth_plugin_refs[auth_n_plugin_refs++] = h;
	}
	return SASL_OK;
}

/* SASL_CB_LOG: libsasl2's own messages into our log, at debug level for the chatty ones. */
static int auth_log(void *ctx, int level, const char *message)
{
	char esc[LOG_ESC_SIZE];

	(void)ctx;
	/* Plugins may quote what the client sent: escape like any client string. */
	if (level <= SASL_LOG_WARN)
		log_msg(level <= SASL_LOG_ERR ? LOG_ERR : LOG_WARNING, "sasl: %s",
			log_esc_text(message, strlen(message), esc, sizeof esc));
	return SASL_OK;
}

/*
 * SASL_CB_CANON_USER: libsasl2 hands every mechanism's login name (CRAM-MD5, PLAIN, SCRAM alike)
 * to this callback before its own canonicalisation and the password lookup, so a failed AUTH can
 * name the user that was tried. The name passes through unchanged.
 */
static int auth_canon(sasl_conn_t *conn, void *ctx, const char *in, unsigned inlen, unsigned flags,
		      const char *user_realm, char *out, unsigned out_max, unsigned *out_len)
{
	struct auth *a = ctx;

	(void)conn;
	(void)user_realm;
	if (inlen >= out_max)
		return SASL_BUFOVER;
	/* The first name the client gave; libsasl2 later re-canonicalises the realm-qualified one. */
	if ((flags & SASL_CU_AUTHID) && !a->tried_authid) {
		log_esc(in, inlen, a->tried, sizeof a->tried);
		a->tried_authid = true;
	} else if (a->tried[0] == '\0') {
		log_esc(in, inlen, a->tried, sizeof a->tried);
	}
	memcpy(out, in, inlen);
	out[inlen] = '\0';
	*out_len = inlen;
	return SASL_OK;
}

/* True if the admin put NAME in sasl_mech_list explicitly. */
static int auth_admin_listed(const struct config *cf, const char *name)
{
	for (size_t i = 0; i < cf->n_sasl_opts; i++) {
		if (strcmp(cf->sasl_opts[i].key, "mech_list"))
			continue;
		const char *p = cf->sasl_opts[i].value;
		size_t n = strlen(name);
		while ((p = strcasestr(p, name)) != NULL) {
			int start = p == cf->sasl_opts[i].value || isspace((unsigned char)p[-1]);
			if (start && (p[n] == '\0' || isspace((unsigned char)p[n])))
				return 1;
			p += n;
		}
	}
	return 0;
}

/* True if sasl_mech_list names a mechanism offered only under TLS: PLAIN, LOGIN, EXTERNAL, *-PLUS. */
static int auth_tls_only_listed(const struct config *cf)
{
	for (size_t i = 0; i < cf->n_sasl_opts; i++) {
		if (strcmp(cf->sasl_opts[i].key, "mech_list"))
			continue;
		char *copy = strdup(cf->sasl_opts[i].value), *save = NULL;
		int found = 0;
		for (char *m = copy ? strtok_r(copy, " \t,", &save) : NULL; m && !found; m = strtok_r(NULL, " \t,", &save)) {
			size_t n = strlen(m);
			found = !strcasecmp(m, "PLAIN") || !strcasecmp(m, "LOGIN") || !strcasecmp(m, "EXTERNAL") ||
				(n > 5 && !strcasecmp(m + n - 5, "-PLUS"));
		}
		free(copy);
		if (found)
			return 1;
	}
	return 0;
}

/* Open a fresh sasl_conn with our security properties. */
static enum auth_rc auth_connect(struct auth *a)
{
	sasl_security_properties_t sp = { 0 };
	const struct config *cf = a->cf;
	int rc;

	a->tried[0] = '\0';
	a->tried_authid = false;
	/* SASL_SUCCESS_DATA: SCRAM's final message comes with SASL_OK; session.c sends it in a 334. */
	rc = sasl_server_new("smtp", cf->hostname, cf->sasl_realm[0] ? cf->sasl_realm : NULL,
			     a->local, a->remote, a->conn_cb, SASL_SUCCESS_DATA, &a->conn);
	if (rc != SASL_OK) {
		snprintf(a->why, sizeof a->why, "sasl_server_new: %s", sasl_errstring(rc, NULL, NULL));
		a->conn = NULL;
		return AUTH_TEMP;
	}
	sp.max_ssf = 0;       /* no SASL security layer: we do not wrap the SMTP stream */
	sp.maxbufsize = 0;
	sp.security_flags = SASL_SEC_NOANONYMOUS;
	if (!a->tls || (!auth_admin_listed(cf, "PLAIN") && !auth_admin_listed(cf, "LOGIN")))
		sp.security_flags |= SASL_SEC_NOPLAINTEXT;
	rc = SASL_OK;
	if (a->tls) {
		rc = sasl_setprop(a->conn, SASL_SSF_EXTERNAL, &a->ssf);
		if (rc == SASL_OK && a->external[0] != '\0')
			rc = sasl_setprop(a->conn, SASL_AUTH_EXTERNAL, a->external);
		if (rc == SASL_OK && a->cbind.name != NULL)
			rc = sasl_setprop(a->conn, SASL_CHANNEL_BINDING, &a->cbind);
	}
	if (rc == SASL_OK)
		rc = sasl_setprop(a->conn, SASL_SEC_PROPS, &sp);
	if (rc != SASL_OK) {
		snprintf(a->why, sizeof a->why, "sasl_setprop: %s", sasl_errdetail(a->conn));
		sasl_dispose(&a->conn);
		return AUTH_TEMP;
	}
	return AUTH_OK;
}

/* Build the advertised list: what libsasl2 can do, minus what we never offer. */
static void auth_build_mechs(struct auth *a)
{
	const char *list = NULL;
	unsigned len;
	int count;
	size_t o = 0;

	a->mechs[0] = '\0';
	if (sasl_listmech(a->conn, NULL, "", " ", "", &list, &len, &count) != SASL_OK)
		return;
	char *copy = strndup(list, len), *save = NULL;
	if (copy == NULL)
		return;
	for (char *m = strtok_r(copy, " ", &save); m; m = strtok_r(NULL, " ", &save)) {
		if (!strcasecmp(m, "ANONYMOUS") || strlen(m) > AUTH_MECH_MAX)
			continue;
		if ((!strcasecmp(m, "PLAIN") || !strcasecmp(m, "LOGIN")) &&
		    (!a->tls || !auth_admin_listed(a->cf, m)))
			continue;
		int k = snprintf(a->mechs + o, sizeof a->mechs - o, "%s%s", o ? " " : "", m);
		if (k < 0 || (size_t)k >= sizeof a->mechs - o)
			break;
		o += (size_t)k;
	}
	free(copy);
}

/* See auth.h. */
struct auth *auth_open(const struct config *cf, const char *local, const char *remote,
		       char *err, size_t errlen)
{
	struct auth *a = calloc(1, sizeof *a);

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->cf = cf;
	a->local = local ? strdup(local) : NULL;
	a->remote = remote ? strdup(remote) : NULL;
	a->cb[0] = (sasl_callback_t){ SASL_CB_GETOPT, (int (*)(void))(void (*)(void))auth_getopt, (void *)cf };
	a->cb[1] = (sasl_callback_t){ SASL_CB_LOG, (int (*)(void))(void (*)(void))auth_log, NULL };
	a->cb[2] = (sasl_callback_t){ SASL_CB_VERIFYFILE, (int (*)(void))(void (*)(void))auth_verifyfile, (void *)cf };
	a->conn_cb[0] = (sasl_callback_t){ SASL_CB_CANON_USER, (int (*)(void))(void (*)(void))auth_canon, a };
	a->conn_cb[1] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	if (cf->sasl_plugin_dir != NULL) {
		a->cb[3] = (sasl_callback_t){ SASL_CB_GETPATH, (int (*)(void))(void (*)(void))auth_getpath, (void *)cf };
		a->cb[4] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	} else {
		a->cb[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	}
	/*
	 * A missing or unreadable sasldb would make every customer look like a wrong password (535):
	 * it is backend trouble, so AUTH answers 454 and the log says why.
	 */
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (!strcmp(cf->sasl_opts[i].key, "sasldb_path") && access(cf->sasl_opts[i].value, R_OK) != 0)
			snprintf(a->backend_err, sizeof a->backend_err, "sasl_sasldb_path %s: %s",
				 cf->sasl_opts[i].value, strerror(errno));
	return a;
}

/* See auth.h. */
int auth_ready(struct auth *a, char *err, size_t errlen)
{
	if (a->ready)
		return 0;
	if (!auth_inited) {
		int rc = sasl_server_init(a->cb, "odmrd");
		if (rc != SASL_OK) {
			snprintf(err, errlen, "sasl_server_init: %s", sasl_errstring(rc, NULL, NULL));
			return -1;
		}
		auth_inited = 1;
	}
	if (a->conn == NULL && auth_connect(a) != AUTH_OK) {
		snprintf(err, errlen, "%s", a->why);
		return -1;
	}
	auth_build_mechs(a);
	/* Nothing to offer is an error, unless TLS (still to come, or a client certificate) would add some. */
	if (a->mechs[0] == '\0' && !(a->cf->tls_cert_file != NULL && auth_tls_only_listed(a->cf))) {
		snprintf(err, errlen, "no usable SASL mechanism (check sasl_mech_list and the plugins)");
		return -1;
	}
	a->ready = true;
	return 0;
}

/* Advertised mechanisms. */
const char *auth_mechs(const struct auth *a)
{
	return a->mechs;
}

/* See auth.h. */
bool auth_listed(const struct auth *a, const char *mech)
{
	return auth_admin_listed(a->cf, mech);
}

/* Map a libsasl2 result onto the SMTP outcome, remembering a loggable reason. */
static enum auth_rc auth_map(struct auth *a, int rc, const char *step)
{
	switch (rc) {
	case SASL_OK:
		return AUTH_OK;
	case SASL_CONTINUE:
		return AUTH_CONTINUE;
	case SASL_NOMECH:
	case SASL_TOOWEAK:
	case SASL_ENCRYPT:
		snprintf(a->why, sizeof a->why, "%s: mechanism unavailable", step);
		return AUTH_NOMECH;
	case SASL_TRYAGAIN:
	case SASL_FAIL:
	case SASL_NOMEM:
	case SASL_UNAVAIL:
		snprintf(a->why, sizeof a->why, "%s: %s", step, sasl_errstring(rc, NULL, NULL));
		return AUTH_TEMP;
	default:
		/* BADAUTH, NOUSER, NOAUTHZ, BADPROT, ...: one answer so a prober learns nothing. */
		snprintf(a->why, sizeof a->why, "%s: %s", step, sasl_errstring(rc, NULL, NULL));
		return AUTH_FAIL;
	}
}

/* See auth.h. */
enum auth_rc auth_start(struct auth *a, const char *mech, const char *in, unsigned inlen,
			const char **out, unsigned *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (a->backend_err[0] != '\0') {
		snprintf(a->why, sizeof a->why, "%s", a->backend_err);
		return AUTH_TEMP;
	}
	if (a->conn == NULL && auth_connect(a) != AUTH_OK)
		return AUTH_TEMP;
	int rc = sasl_server_start(a->conn, mech, in, inlen, out, outlen);
	if (rc == SASL_BADPROT && in != NULL) {
		snprintf(a->why, sizeof a->why, "initial response not allowed for %s", mech);
		return AUTH_SYNTAX;
	}
	return auth_map(a, rc, "start");
}

/* See auth.h. */
enum auth_rc auth_step(struct auth *a, const char *in, unsigned inlen,
		       const char **out, unsigned *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (a->conn == NULL)
		return AUTH_TEMP;
	return auth_map(a, sasl_server_step(a->conn, in, inlen, out, outlen), "step");
}

/* See auth.h. */
const char *auth_user(const struct auth *a)
{
	const void *user = NULL;

	if (a->conn == NULL || sasl_getprop(a->conn, SASL_USERNAME, &user) != SASL_OK)
		return NULL;
	return user;
}

/* See auth.h. */
const char *auth_why(const struct auth *a)
{
	return a->why;
}

/* See auth.h. */
int auth_encode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen)
{
	*outlen = 0;
	if (sasl_encode64(in, inlen, out, outmax, outlen) != SASL_OK || *outlen >= outmax)
		return -1;
	out[*outlen] = '\0';
	return 0;
}

/* See auth.h. */
int auth_decode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen)
{
	*outlen = 0;
	return sasl_decode64(in, inlen, out, outmax, outlen) == SASL_OK ? 0 : -1;
}

/* See auth.h. */
const char *auth_tried(const struct auth *a)
{
	return a->tried[0] ? a->tried : NULL;
}

/* See auth.h. */
int auth_check_store(struct auth *a, char *err, size_t errlen)
{
	if (a->backend_err[0] != '\0') {
		snprintf(err, errlen, "%s", a->backend_err);
		return -1;
	}
	if (a->conn == NULL && auth_connect(a) != AUTH_OK) {
		snprintf(err, errlen, "%s", a->why);
		return -1;
	}
	int rc = sasl_user_exists(a->conn, "smtp", a->cf->sasl_realm[0] ? a->cf->sasl_realm : NULL,
				  "odmrd-t-no-such-user");
	if (rc == SASL_NOUSER || rc == SASL_OK)
		return 0;
	snprintf(err, errlen, "%s (%s)", sasl_errstring(rc, NULL, NULL), sasl_errdetail(a->conn));
	return -1;
}

/* See auth.h. */
enum auth_rc auth_tls(struct auth *a, unsigned ssf, const char *external_id, const char *cb_name,
		      const unsigned char *cb, size_t cb_len)
{
	a->tls = true;
	a->ssf = ssf > 0 ? ssf : 1;
	snprintf(a->external, sizeof a->external, "%s", external_id ? external_id : "");
	memset(&a->cbind, 0, sizeof a->cbind);
	if (cb_name != NULL && cb_len > 0 && cb_len <= sizeof a->cbdata) {
		snprintf(a->cbname, sizeof a->cbname, "%s", cb_name);
		memcpy(a->cbdata, cb, cb_len);
		a->cbind.name = a->cbname;
		a->cbind.critical = 0;   /* SCRAM without -PLUS stays usable */
		a->cbind.len = cb_len;
		a->cbind.data = a->cbdata;
	}
	/* Not set up yet (STARTTLS before the first EHLO): auth_ready connects with these properties. */
	if (!a->ready)
		return AUTH_OK;
	enum auth_rc rc = auth_reset(a);
	if (rc == AUTH_OK)
		auth_build_mechs(a);
	return rc;
}

/* See auth.h. */
enum auth_rc auth_reset(struct auth *a)
{
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	return auth_connect(a);
}

/* Dispose of the connection and the library state. */
void auth_close(struct auth *a)
{
	if (a == NULL)
		return;
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	if (auth_inited) {
		sasl_server_done();
		auth_inited = 0;
	}
	while (auth_n_plugin_refs > 0)
		dlclose(auth_plugin_refs[--auth_n_plugin_refs]);
	free(a->local);
	free(a->remote);
	free(a);
}
