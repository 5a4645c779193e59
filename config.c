/*
 * config.c - parser for odmrd.conf ("key = value" lines, '#' comments).
 *
 * Trusts the file's owner (root) but not its typing: every key is known and every value checked,
 * and any error names file:line so the admin can fix it. Invariant: after cf_load() fails, *cf holds
 * nothing that needs freeing beyond cf_free().
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

enum cf_type { T_STR, T_UINT, T_BOOL, T_FACILITY, T_MTA, T_PATH };

struct cf_key {
	const char *name;
	enum cf_type type;
	size_t off;
	unsigned min, max;  /* T_UINT bounds */
};

#define S(f) offsetof(struct config, f)
/* Every key odmrd knows; sasl_* keys other than these are passed to libsasl2. */
static const struct cf_key cf_keys[] = {
	{ "hostname", T_STR, S(hostname), 0, 0 },
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
};
#undef S

static const struct { const char *name; int value; } cf_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "auth", LOG_AUTH },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

/* Duplicate a string or die: config is read before any customer byte, so 421 is all we could do. */
static char *cf_strdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

/* The host's canonical name, as a default greeting name. */
static char *cf_default_hostname(void)
{
	char name[256];
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;

	if (gethostname(name, sizeof name - 1) != 0)
		return cf_strdup("localhost");
	name[sizeof name - 1] = '\0';
	if (strchr(name, '.') == NULL && getaddrinfo(name, NULL, &hints, &ai) == 0) {
		if (ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.') != NULL)
			snprintf(name, sizeof name, "%s", ai->ai_canonname);
		freeaddrinfo(ai);
	}
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
	cf->max_domains = 32;
	cf->atrn_interval = 60;
	cf->syslog_facility = LOG_MAIL;
	cf->mta = CF_MTA_POSTFIX;
	cf->run_dir = cf_strdup("/run/odmrd");
	cf->postqueue = cf_strdup("/usr/sbin/postqueue");
	cf->sendmail = cf_strdup("/usr/sbin/sendmail");
}

/* Store one value in its typed slot; returns an error text or NULL. */
static const char *cf_set(struct config *cf, const struct cf_key *k, const char *v)
{
	void *slot = (char *)cf + k->off;

	switch (k->type) {
	case T_PATH:
		if (v[0] != '/')
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
		if (n < k->min || n > k->max)
			return "out of range";
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
		for (size_t i = 0; i < sizeof cf_facilities / sizeof cf_facilities[0]; i++)
			if (!strcmp(v, cf_facilities[i].name)) {
				*(int *)slot = cf_facilities[i].value;
				return NULL;
			}
		return "unknown syslog facility";
	case T_MTA:
		if (!strcmp(v, "postfix"))
			*(enum cf_mta *)slot = CF_MTA_POSTFIX;
		else if (!strcmp(v, "sendmail"))
			*(enum cf_mta *)slot = CF_MTA_SENDMAIL;
		else if (!strcmp(v, "exec"))
			*(enum cf_mta *)slot = CF_MTA_EXEC;
		else
			return "must be postfix, sendmail or exec";
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

/* Apply one non-comment line. */
static const char *cf_line(struct config *cf, char *line)
{
	char *eq = strchr(line, '=');
	if (eq == NULL)
		return "expected \"key = value\"";
	*eq = '\0';
	char *key = cf_trim(line), *value = cf_trim(eq + 1);
	if (*key == '\0')
		return "missing key";
	for (size_t i = 0; i < sizeof cf_keys / sizeof cf_keys[0]; i++)
		if (!strcmp(key, cf_keys[i].name))
			return cf_set(cf, &cf_keys[i], value);
	if (!strncmp(key, "sasl_", 5) && key[5] != '\0') {
		cf_add_sasl(cf, key + 5, value);
		return NULL;
	}
	return "unknown key";
}

/* Cross-key checks that no single line can make. */
static const char *cf_check(const struct config *cf)
{
	if (cf->hard_error_limit <= cf->soft_error_limit)
		return "hard_error_limit must be above soft_error_limit";
	if (cf->mta == CF_MTA_EXEC && (cf->exec_command == NULL || cf->exec_command[0] != '/'))
		return "mta = exec needs exec_command starting with an absolute path";
	if (cf->hostname != NULL && cf->hostname[0] == '\0')
		return "hostname must not be empty";
	for (const char *p = cf->hostname; p && *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
			return "hostname has a character not allowed in a host name";
	return NULL;
}

/* Load PATH over the defaults. */
int cf_load(const char *path, struct config *cf, char *err, size_t errlen)
{
	FILE *fp;
	char line[4096];
	unsigned lineno = 0;
	const char *why;

	cf_defaults(cf);
	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, fp) != NULL) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			fclose(fp);
			return -1;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *s = cf_trim(line);
		if (*s == '\0')
			continue;
		if ((why = cf_line(cf, s)) != NULL) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			fclose(fp);
			return -1;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	if (cf->hostname == NULL)
		cf->hostname = cf_default_hostname();
	if ((why = cf_check(cf)) != NULL) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	return 0;
}

/* Release every string the config owns. */
void cf_free(struct config *cf)
{
	for (size_t i = 0; i < sizeof cf_keys / sizeof cf_keys[0]; i++)
		if (cf_keys[i].type == T_STR || cf_keys[i].type == T_PATH)
			free(*(char **)((char *)cf + cf_keys[i].off));
	for (size_t i = 0; i < cf->n_sasl_opts; i++) {
		free(cf->sasl_opts[i].key);
		free(cf->sasl_opts[i].value);
	}
	free(cf->sasl_opts);
	memset(cf, 0, sizeof *cf);
}
