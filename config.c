/*
 * config.c - parser for odmrd.conf ("key = value" lines, '#' comments).
 *
 * Trusts the file's owner (root) but not its typing: every key is known (sasl_* keys too: libsasl2
 * would silently ignore a misspelt one) and every value checked, and every error names
 * file:line: key so the admin can fix it. Invariant: after cf_parse() finds problems, *cf holds
 * nothing that needs freeing beyond cf_free().
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

enum cf_type { T_STR, T_UINT, T_BOOL, T_FACILITY, T_MTA, T_PATH, T_HOST, T_TLSLEVEL };

struct cf_key {
	const char *name;
	enum cf_type type;
	size_t off;
	unsigned min, max;  /* T_UINT bounds */
};

#define S(f) offsetof(struct config, f)
/* Every key odmrd knows; sasl_* keys other than these are passed to libsasl2. */
static const struct cf_key cf_keys[] = {
	{ "hostname", T_HOST, S(hostname), 0, 0 },
	{ "customer_map", T_PATH, S(customer_map), 0, 0 },
	{ "sasl_realm", T_STR, S(sasl_realm), 0, 0 },
	{ "sasl_plugin_dir", T_PATH, S(sasl_plugin_dir), 0, 0 },
	{ "max_auth_failures", T_UINT, S(max_auth_failures), 1, 100 },
	{ "soft_error_limit", T_UINT, S(soft_error_limit), 0, 1000 },
	{ "hard_error_limit", T_UINT, S(hard_error_limit), 1, 1000 },
	{ "junk_command_limit", T_UINT, S(junk_command_limit), 1, 100000 },
	{ "error_delay_ms", T_UINT, S(error_delay_ms), 0, 60000 },
	{ "auth_fail_delay_ms", T_UINT, S(auth_fail_delay_ms), 0, 60000 },
	{ "greet_pause_ms", T_UINT, S(greet_pause_ms), 0, 60000 },
	{ "idle_timeout", T_UINT, S(idle_timeout), 1, 86400 },
	{ "session_timeout", T_UINT, S(session_timeout), 1, 86400 },
	{ "atrn_timeout", T_UINT, S(atrn_timeout), 600, 86400 },
	{ "max_session_time", T_UINT, S(max_session_time), 5, 604800 },
	/* 126 "x.yy," names fill a 512-octet command line: more could never arrive. */
	{ "max_domains", T_UINT, S(max_domains), 1, 126 },
	{ "atrn_interval", T_UINT, S(atrn_interval), 0, 86400 },
	{ "tcp_wrappers", T_BOOL, S(tcp_wrappers), 0, 0 },
	{ "syslog_facility", T_FACILITY, S(syslog_facility), 0, 0 },
	{ "log_file", T_PATH, S(log_file), 0, 0 },
	{ "user", T_STR, S(user), 0, 0 },
	{ "mta", T_MTA, S(mta), 0, 0 },
	{ "run_dir", T_PATH, S(run_dir), 0, 0 },
	{ "mta_user", T_STR, S(mta_user), 0, 0 },
	{ "postqueue", T_PATH, S(postqueue), 0, 0 },
	{ "postfix_config_dir", T_PATH, S(postfix_config_dir), 0, 0 },
	{ "sendmail", T_PATH, S(sendmail), 0, 0 },
	{ "sendmail_cf", T_PATH, S(sendmail_cf), 0, 0 },
	{ "exec_command", T_STR, S(exec_command), 0, 0 },
	{ "customer_map_group", T_STR, S(customer_map_group), 0, 0 },
	{ "postfix_transport", T_PATH, S(postfix_transport), 0, 0 },
	{ "postmap", T_PATH, S(postmap), 0, 0 },
	{ "sendmail_m4", T_PATH, S(sendmail_m4), 0, 0 },
	{ "tls_cert_file", T_PATH, S(tls_cert_file), 0, 0 },
	{ "tls_key_file", T_PATH, S(tls_key_file), 0, 0 },
	{ "tls_ca_file", T_PATH, S(tls_ca_file), 0, 0 },
	{ "tls_ticket_key_file", T_PATH, S(tls_ticket_key_file), 0, 0 },
	{ "tls_module", T_PATH, S(tls_module), 0, 0 },
	{ "tls_security_level", T_TLSLEVEL, S(tls_security_level), 0, 0 },
	{ "tls_wrappermode", T_BOOL, S(tls_wrappermode), 0, 0 },
	{ "tls_auth_only", T_BOOL, S(tls_auth_only), 0, 0 },
};
#undef S

/*
 * The server-side options libsasl2 2.1.28 and the plugins Debian ships for it read (verified in
 * the options documentation and the strings of libsasl2.so.2 and each plugin): a sasl_KEY line
 * whose KEY is not here would be ignored by libsasl2 without a word, so it is an error.
 */
static const char *const cf_sasl_known[] = {
	/* the library */
	"authdaemond_path", "auto_transition", "auxprop_plugin", "canon_user_plugin", "log_level",
	"mech_list", "plugin_list", "pwcheck_method", "saslauthd_path",
	/* auxprop plugins: sasldb, sql, ldapdb */
	"sasldb_path", "sasldb_mapsize", "sasldb_maxreaders",
	"sql_engine", "sql_hostnames", "sql_user", "sql_passwd", "sql_database", "sql_select",
	"sql_statement", "sql_insert", "sql_update", "sql_usessl",
	"ldapdb_uri", "ldapdb_id", "ldapdb_mech", "ldapdb_pw", "ldapdb_rc", "ldapdb_starttls",
	"ldapdb_canon_attr",
	/* mechanism plugins: DIGEST-MD5, NTLM, SCRAM, GSSAPI, OTP, SRP, KERBEROS_V4 */
	"reauth_timeout", "ntlm_server", "ntlm_v2", "scram_iteration_counter", "keytab",
	"opiekeys", "otp_mda", "srp_mda", "srvtab",
};

/* The words a key of a named type takes, and what each stands for. */
struct cf_name {
	const char *name;
	int value;
};

#define CF_NAMES(t) (t), sizeof (t) / sizeof (t)[0]

static const struct cf_name cf_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "auth", LOG_AUTH },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};
static const struct cf_name cf_mtas[] = {
	{ "postfix", CF_MTA_POSTFIX }, { "sendmail", CF_MTA_SENDMAIL }, { "exec", CF_MTA_EXEC },
};
static const struct cf_name cf_tls_levels[] = {
	{ "none", CF_TLS_NONE }, { "may", CF_TLS_MAY }, { "encrypt", CF_TLS_ENCRYPT },
};

/* The value of word V in table T (N entries) into *OUT; false if V is not one of its words. */
static bool cf_name_value(const struct cf_name *t, size_t n, const char *v, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, t[i].name)) {
			*out = t[i].value;
			return true;
		}
	return false;
}

/* The word for VALUE in table T (N entries), "?" if it has none. */
static const char *cf_value_name(const struct cf_name *t, size_t n, int value)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == value)
			return t[i].name;
	return "?";
}

/* Duplicate a string or die: config is read before any customer byte, so 421 is all we could do. */
static char *cf_strdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

/*
 * The default greeting name: gethostname(2) as it is, dot or no dot. Completing a short name
 * through the resolver (getaddrinfo with AI_CANONNAME) cost every connection a look-up, each
 * connection being a fresh process: /etc/hosts at best, a DNS query (and its time-outs when the
 * server is down) at worst. A host whose name has no dot gets that name; the admin who wants the
 * FQDN sets hostname (odmrd.conf(5)).
 */
static char *cf_default_hostname(void)
{
	char name[256];

	if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0')
		return cf_strdup("localhost");
	name[sizeof name - 1] = '\0';
	return cf_strdup(name);
}

/* Built-in defaults, chosen so an unconfigured key is the safe choice. */
void cf_defaults(struct config *cf)
{
	memset(cf, 0, sizeof *cf);
	cf->customer_map = cf_strdup("/etc/odmrd/customers.db");
	cf->sasl_realm = cf_strdup("");
	cf->max_auth_failures = 3;
	cf->soft_error_limit = 3;
	cf->hard_error_limit = 10;
	cf->junk_command_limit = 100;
	cf->error_delay_ms = 1000;
	cf->auth_fail_delay_ms = 1000;
	cf->idle_timeout = 300;
	cf->session_timeout = 600;
	cf->atrn_timeout = 600;
	/* Hours: a big backlog over a slow line still fits, a trickling customer cannot hold locks for days. */
	cf->max_session_time = 4 * 3600;
	cf->tls_module = cf_strdup(CF_TLS_MODULE);
	cf->max_domains = 32;
	cf->atrn_interval = 60;
	cf->syslog_facility = LOG_MAIL;
	cf->mta = CF_MTA_POSTFIX;
	cf->run_dir = cf_strdup("/run/odmrd");
	cf->postqueue = cf_strdup("/usr/sbin/postqueue");
	cf->sendmail = cf_strdup("/usr/sbin/sendmail");
	cf->postmap = cf_strdup("/usr/sbin/postmap");
}

/* Store one value in its typed slot; returns an error text (perhaps in BUF) or NULL. */
static const char *cf_set(struct config *cf, const struct cf_key *k, const char *v, char *buf,
			  size_t len)
{
	void *slot = (char *)cf + k->off;
	int x;

	switch (k->type) {
	case T_HOST:
		if (v[0] == '\0')
			return "must not be empty";
		for (const char *p = v; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				return "has a character not allowed in a host name";
		/* fall through */
	case T_PATH:
		if (k->type == T_PATH && v[0] != '/')
			return "must be an absolute path";
		/* fall through */
	case T_STR:
		free(*(char **)slot);
		*(char **)slot = cf_strdup(v);
		return NULL;
	case T_UINT: {
		char *end;
		errno = 0;
		if (!isdigit((unsigned char)v[0]))
			return "must be a whole number";
		unsigned long n = strtoul(v, &end, 10);
		if (*end != '\0' || errno != 0)
			return "must be a whole number";
		if (n < k->min || n > k->max) {
			snprintf(buf, len, "out of range (%u-%u)", k->min, k->max);
			return buf;
		}
		*(unsigned *)slot = (unsigned)n;
		return NULL;
	}
	case T_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
			*(bool *)slot = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
			*(bool *)slot = false;
		else
			return "must be yes or no";
		return NULL;
	case T_FACILITY:
		return cf_name_value(CF_NAMES(cf_facilities), v, (int *)slot) ? NULL : "unknown syslog facility";
	case T_MTA:
		if (!cf_name_value(CF_NAMES(cf_mtas), v, &x))
			return "must be postfix, sendmail or exec";
		*(enum cf_mta *)slot = (enum cf_mta)x;
		return NULL;
	case T_TLSLEVEL:
		if (!cf_name_value(CF_NAMES(cf_tls_levels), v, &x))
			return "must be none, may or encrypt";
		*(enum cf_tls_level *)slot = (enum cf_tls_level)x;
		return NULL;
	}
	return "internal error";
}

/* Keep a sasl_* option for SASL_CB_GETOPT; a repeated key replaces the earlier value. */
static void cf_add_sasl(struct config *cf, const char *key, const char *value)
{
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (!strcmp(cf->sasl_opts[i].key, key)) {
			free(cf->sasl_opts[i].value);
			cf->sasl_opts[i].value = cf_strdup(value);
			return;
		}
	struct cf_sasl_opt *n = realloc(cf->sasl_opts, (cf->n_sasl_opts + 1) * sizeof *n);
	if (n == NULL)
		abort();
	cf->sasl_opts = n;
	n[cf->n_sasl_opts].key = cf_strdup(key);
	n[cf->n_sasl_opts].value = cf_strdup(value);
	cf->n_sasl_opts++;
}

/* Trim white space at both ends, in place. */
static char *cf_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Apply one non-comment line; on error *KEYP names the key (or is NULL) for the message. */
static const char *cf_line(struct config *cf, char *line, const char **keyp, char *buf, size_t len)
{
	char *eq = strchr(line, '=');
	*keyp = NULL;
	if (eq == NULL)
		return "expected \"key = value\"";
	*eq = '\0';
	char *key = cf_trim(line), *value = cf_trim(eq + 1);
	if (*key == '\0')
		return "missing key";
	*keyp = key;
	for (size_t i = 0; i < sizeof cf_keys / sizeof cf_keys[0]; i++)
		if (!strcmp(key, cf_keys[i].name))
			return cf_set(cf, &cf_keys[i], value, buf, len);
	if (!strncmp(key, "sasl_", 5) && key[5] != '\0') {
		for (size_t i = 0; i < sizeof cf_sasl_known / sizeof cf_sasl_known[0]; i++)
			if (!strcmp(key + 5, cf_sasl_known[i])) {
				cf_add_sasl(cf, key + 5, value);
				return NULL;
			}
		return "unknown key (not an option of libsasl2 2.1.28 or its plugins)";
	}
	return "unknown key";
}

/* Cross-key checks that no single line can make; *KEYP names the key at fault. */
static const char *cf_check(const struct config *cf, const char **keyp)
{
	*keyp = "hard_error_limit";
	if (cf->hard_error_limit <= cf->soft_error_limit)
		return "must be above soft_error_limit";
	*keyp = "exec_command";
	if (cf->mta == CF_MTA_EXEC && (cf->exec_command == NULL || cf->exec_command[0] != '/'))
		return "mta = exec needs exec_command starting with an absolute path";
	*keyp = cf->tls_cert_file ? "tls_key_file" : "tls_cert_file";
	if ((cf->tls_cert_file == NULL) != (cf->tls_key_file == NULL))
		return "tls_cert_file and tls_key_file go together";
	*keyp = "tls_security_level";
	if (cf->tls_cert_file == NULL && (cf->tls_security_level == CF_TLS_MAY ||
					  cf->tls_security_level == CF_TLS_ENCRYPT))
		return "may or encrypt needs tls_cert_file and tls_key_file";
	*keyp = "tls_wrappermode";
	if (cf->tls_cert_file == NULL && cf->tls_wrappermode)
		return "tls_wrappermode needs tls_cert_file and tls_key_file";
	if (cf->tls_security_level == CF_TLS_NONE && cf->tls_wrappermode)
		return "contradicts tls_security_level = none";
	*keyp = cf->tls_ca_file ? "tls_ca_file" : cf->tls_ticket_key_file ? "tls_ticket_key_file" : "tls_auth_only";
	if (cf->tls_cert_file == NULL && (cf->tls_ca_file || cf->tls_ticket_key_file || cf->tls_auth_only))
		return "tls_ca_file, tls_ticket_key_file and tls_auth_only need tls_cert_file";
	return NULL;
}

/* Format one problem as "path[:line]: [key: ]why" and hand it to REPORT. */
static void cf_problem(cf_report_fn report, void *ctx, const char *path, unsigned lineno,
		       const char *key, const char *why)
{
	char msg[640], where[32] = "";

	if (lineno)
		snprintf(where, sizeof where, ":%u", lineno);
	snprintf(msg, sizeof msg, "%s%s: %s%s%s", path, where, key ? key : "", key ? ": " : "", why);
	report(ctx, msg);
}

/* See config.h. */
unsigned cf_parse(const char *path, struct config *cf, cf_report_fn report, void *ctx)
{
	return cf_parse_opts(path, NULL, 0, cf, report, ctx);
}

/* See config.h. */
unsigned cf_parse_opts(const char *path, char *const *opts, size_t nopts, struct config *cf,
		       cf_report_fn report, void *ctx)
{
	FILE *fp;
	char line[4096];
	unsigned lineno = 0, problems = 0;
	const char *why, *key;
	char buf[64];

	cf_defaults(cf);
	if ((fp = fopen(path, "re")) == NULL) {
		cf_problem(report, ctx, path, 0, NULL, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof line, fp) != NULL) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			cf_problem(report, ctx, path, lineno, NULL, "line too long");
			problems++;
			int c;
			while ((c = getc(fp)) != EOF && c != '\n')
				;
			continue;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *s = cf_trim(line);
		if (*s == '\0')
			continue;
		if ((why = cf_line(cf, s, &key, buf, sizeof buf)) != NULL) {
			cf_problem(report, ctx, path, lineno, key, why);
			problems++;
		}
	}
	if (ferror(fp)) {
		cf_problem(report, ctx, path, 0, NULL, "read error");
		problems++;
	}
	fclose(fp);
	/* odmrd -o key=value: over the file's settings, reported as "-o key=value: key: why". */
	for (size_t i = 0; i < nopts; i++) {
		char where[300];
		snprintf(line, sizeof line, "%s", opts[i]);
		snprintf(where, sizeof where, "-o %s", opts[i]);
		if ((why = cf_line(cf, cf_trim(line), &key, buf, sizeof buf)) != NULL) {
			cf_problem(report, ctx, where, 0, key, why);
			problems++;
		}
	}
	if (cf->tls_security_level == CF_TLS_DEFAULT)
		cf->tls_security_level = cf->tls_cert_file ? CF_TLS_MAY : CF_TLS_NONE;
	if (problems == 0 && (why = cf_check(cf, &key)) != NULL) {
		cf_problem(report, ctx, path, 0, key, why);
		problems++;
	}
	return problems;
}

struct cf_first {
	char *err;
	size_t len;
	unsigned seen;
};

/* cf_report_fn keeping the first problem only. */
static void cf_keep_first(void *ctx, const char *msg)
{
	struct cf_first *f = ctx;

	if (f->seen++ == 0)
		snprintf(f->err, f->len, "%s", msg);
}

/* Load PATH over the defaults. */
int cf_load(const char *path, struct config *cf, char *err, size_t errlen)
{
	return cf_load_opts(path, NULL, 0, cf, err, errlen);
}

/* Load PATH over the defaults, then OPTS over the file. */
int cf_load_opts(const char *path, char *const *opts, size_t nopts, struct config *cf, char *err,
		 size_t errlen)
{
	struct cf_first f = { err, errlen, 0 };

	if (cf_parse_opts(path, opts, nopts, cf, cf_keep_first, &f) != 0)
		return -1;  /* a broken file keeps only a configured name, for the 421 */
	if (cf->hostname == NULL) {
		cf->hostname = cf_default_hostname();
		cf->hostname_default = true;
	}
	return 0;
}

/* The value of key K in CF as it would be written in the file; "" for an unset string. */
static const char *cf_format(const struct config *cf, const struct cf_key *k, char *buf, size_t len)
{
	const void *slot = (const char *)cf + k->off;

	switch (k->type) {
	case T_STR:
	case T_PATH:
	case T_HOST:
		return *(char *const *)slot ? *(char *const *)slot : "";
	case T_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)slot);
		return buf;
	case T_BOOL:
		return *(const bool *)slot ? "yes" : "no";
	case T_FACILITY:
		return cf_value_name(CF_NAMES(cf_facilities), *(const int *)slot);
	case T_MTA: {
		/* Unset means the default, Postfix. */
		enum cf_mta m = *(const enum cf_mta *)slot;
		return cf_value_name(CF_NAMES(cf_mtas), m == CF_MTA_NONE ? CF_MTA_POSTFIX : (int)m);
	}
	case T_TLSLEVEL: {
		/* Unset (derived later from tls_cert_file) prints as none, as before the derivation. */
		enum cf_tls_level l = *(const enum cf_tls_level *)slot;
		return cf_value_name(CF_NAMES(cf_tls_levels), l == CF_TLS_DEFAULT ? CF_TLS_NONE : (int)l);
	}
	}
	return "?";
}

/* See config.h. */
void cf_print_changed(const struct config *cf, FILE *out)
{
	struct config def;
	char a[32], b[32];

	cf_defaults(&def);
	/* tls_security_level's default depends on tls_cert_file: may with it, none without. */
	def.tls_security_level = cf->tls_cert_file ? CF_TLS_MAY : CF_TLS_NONE;
	for (size_t i = 0; i < sizeof cf_keys / sizeof cf_keys[0]; i++) {
		const char *v = cf_format(cf, &cf_keys[i], a, sizeof a);
		if (cf_keys[i].off == offsetof(struct config, hostname) ? !cf->hostname_default :
		    strcmp(v, cf_format(&def, &cf_keys[i], b, sizeof b)) != 0)
			fprintf(out, "%s = %s\n", cf_keys[i].name, v);
	}
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		fprintf(out, "sasl_%s = %s\n", cf->sasl_opts[i].key, cf->sasl_opts[i].value);
	cf_free(&def);
}

/* Release every string the config owns. */
void cf_free(struct config *cf)
{
	for (size_t i = 0; i < sizeof cf_keys / sizeof cf_keys[0]; i++)
		if (cf_keys[i].type == T_STR || cf_keys[i].type == T_PATH || cf_keys[i].type == T_HOST)
			free(*(char **)((char *)cf + cf_keys[i].off));
	for (size_t i = 0; i < cf->n_sasl_opts; i++) {
		free(cf->sasl_opts[i].key);
		free(cf->sasl_opts[i].value);
	}
	free(cf->sasl_opts);
	memset(cf, 0, sizeof *cf);
}
