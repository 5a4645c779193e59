/*
 * check_config.c - cf_load on temporary files: defaults, every key type, comments and blank lines,
 * errors naming file:line: key (unknown key, bad number, out of range, bad path/bool/facility/mta),
 * sasl_* pass-through options and misspelt ones, the missing file, the cross-key checks (mta = exec
 * needs exec_command, hard_error_limit above soft), every problem reported (cf_parse) with the
 * hostname still known after a bad line, and cf_print_changed (odmrd -n). cf_free after every load
 * (valgrind checks the rest).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static char path[4096];
static struct config cf;
static char err[512];

static void cfg_teardown(void)
{
	cf_free(&cf);
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

/* Write TEXT to a fresh temp file (its name in path) and load it. */
static int load(const char *text)
{
	if (path[0])
		unlink(path);
	snprintf(path, sizeof path, "%s/odmrd-cf-XXXXXX", unit_tmproot());
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	size_t n = strlen(text);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	cf_free(&cf);
	err[0] = '\0';
	return cf_load(path, &cf, err, sizeof err);
}

/* Expect TEXT to be refused with an error containing "<path>:LINE:" (LINE 0: no line) and WHAT. */
static void refused(const char *text, unsigned line, const char *what)
{
	char where[4200];

	ck_assert_msg(load(text) == -1, "accepted: %s", text);
	if (line)
		snprintf(where, sizeof where, "%s:%u: ", path, line);
	else
		snprintf(where, sizeof where, "%s: ", path);
	ck_assert_msg(strstr(err, where) != NULL, "error \"%s\" lacks \"%s\"", err, where);
	ck_assert_msg(strstr(err, what) != NULL, "error \"%s\" lacks \"%s\"", err, what);
}

static void ok(const char *text)
{
	ck_assert_msg(load(text) == 0, "refused: %s (%s)", text, err);
}

static void check_default_values(const struct config *c)
{
	ck_assert_str_eq(c->customer_map, "/etc/odmrd/customers.db");
	ck_assert_str_eq(c->sasl_realm, "");
	ck_assert_ptr_null(c->sasl_plugin_dir);
	ck_assert_uint_eq(c->n_sasl_opts, 0);
	ck_assert_uint_eq(c->max_auth_failures, 3);
	ck_assert_uint_eq(c->soft_error_limit, 3);
	ck_assert_uint_eq(c->hard_error_limit, 10);
	ck_assert_uint_eq(c->junk_command_limit, 100);
	ck_assert_uint_eq(c->error_delay_ms, 1000);
	ck_assert_uint_eq(c->auth_fail_delay_ms, 1000);
	ck_assert_uint_eq(c->greet_pause_ms, 0);
	ck_assert_uint_eq(c->idle_timeout, 300);
	ck_assert_uint_eq(c->session_timeout, 600);
	ck_assert_uint_ge(c->atrn_timeout, 600);
	ck_assert_uint_eq(c->max_domains, 32);
	ck_assert_uint_eq(c->atrn_interval, 60);
	ck_assert(!c->tcp_wrappers);
	ck_assert_int_eq(c->syslog_facility, LOG_MAIL);
	ck_assert_ptr_null(c->log_file);
	ck_assert_int_eq(c->mta, CF_MTA_POSTFIX);
	ck_assert_str_eq(c->run_dir, "/run/odmrd");
	ck_assert_str_eq(c->postqueue, "/usr/sbin/postqueue");
	ck_assert_ptr_null(c->postfix_config_dir);
	ck_assert_ptr_null(c->mta_user);
	ck_assert_str_eq(c->sendmail, "/usr/sbin/sendmail");
	ck_assert_ptr_null(c->sendmail_cf);
	ck_assert_ptr_null(c->exec_command);
}

START_TEST(test_cf_defaults)
{
	cf_defaults(&cf);
	ck_assert_ptr_null(cf.hostname);
	check_default_values(&cf);
}
END_TEST

START_TEST(test_empty_file_defaults)
{
	ok("");
	check_default_values(&cf);
	/* the host's name fills in for a missing hostname */
	ck_assert_ptr_nonnull(cf.hostname);
	ck_assert_uint_gt(strlen(cf.hostname), 0);
}
END_TEST

START_TEST(test_every_key)
{
	ok("hostname = odmr.example.net\n"
	   "customer_map = /var/lib/odmrd/customers.db\n"
	   "sasl_realm = example.net\n"
	   "sasl_plugin_dir = /usr/lib/odmrd/sasl\n"
	   "max_auth_failures = 5\n"
	   "soft_error_limit = 4\n"
	   "hard_error_limit = 20\n"
	   "junk_command_limit = 7\n"
	   "error_delay_ms = 250\n"
	   "auth_fail_delay_ms = 2000\n"
	   "greet_pause_ms = 300\n"
	   "idle_timeout = 120\n"
	   "session_timeout = 900\n"
	   "atrn_timeout = 1200\n"
	   "max_domains = 64\n"
	   "atrn_interval = 0\n"
	   "tcp_wrappers = yes\n"
	   "syslog_facility = local3\n"
	   "log_file = /var/log/odmrd.log\n"
	   "mta = sendmail\n"
	   "run_dir = /run/odmrd-test\n"
	   "postqueue = /opt/postfix/postqueue\n"
	   "postfix_config_dir = /etc/postfix-odmr\n"
	   "mta_user = smmsp\n"
	   "sendmail = /opt/sendmail/sendmail\n"
	   "sendmail_cf = /etc/mail/odmr.cf\n"
	   "exec_command = /usr/local/bin/deliver --mode=odmr\n");
	ck_assert_str_eq(cf.hostname, "odmr.example.net");
	ck_assert_str_eq(cf.customer_map, "/var/lib/odmrd/customers.db");
	ck_assert_str_eq(cf.sasl_realm, "example.net");
	ck_assert_str_eq(cf.sasl_plugin_dir, "/usr/lib/odmrd/sasl");
	ck_assert_uint_eq(cf.n_sasl_opts, 0);
	ck_assert_uint_eq(cf.max_auth_failures, 5);
	ck_assert_uint_eq(cf.soft_error_limit, 4);
	ck_assert_uint_eq(cf.hard_error_limit, 20);
	ck_assert_uint_eq(cf.junk_command_limit, 7);
	ck_assert_uint_eq(cf.error_delay_ms, 250);
	ck_assert_uint_eq(cf.auth_fail_delay_ms, 2000);
	ck_assert_uint_eq(cf.greet_pause_ms, 300);
	ck_assert_uint_eq(cf.idle_timeout, 120);
	ck_assert_uint_eq(cf.session_timeout, 900);
	ck_assert_uint_eq(cf.atrn_timeout, 1200);
	ck_assert_uint_eq(cf.max_domains, 64);
	ck_assert_uint_eq(cf.atrn_interval, 0);
	ck_assert(cf.tcp_wrappers);
	ck_assert_int_eq(cf.syslog_facility, LOG_LOCAL3);
	ck_assert_str_eq(cf.log_file, "/var/log/odmrd.log");
	ck_assert_int_eq(cf.mta, CF_MTA_SENDMAIL);
	ck_assert_str_eq(cf.run_dir, "/run/odmrd-test");
	ck_assert_str_eq(cf.postqueue, "/opt/postfix/postqueue");
	ck_assert_str_eq(cf.postfix_config_dir, "/etc/postfix-odmr");
	ck_assert_str_eq(cf.mta_user, "smmsp");
	ck_assert_str_eq(cf.sendmail, "/opt/sendmail/sendmail");
	ck_assert_str_eq(cf.sendmail_cf, "/etc/mail/odmr.cf");
	/* only the first '=' splits key from value */
	ck_assert_str_eq(cf.exec_command, "/usr/local/bin/deliver --mode=odmr");
}
END_TEST

START_TEST(test_bool_and_enum_values)
{
	ok("tcp_wrappers = true\nmta = postfix\nsyslog_facility = daemon\n");
	ck_assert(cf.tcp_wrappers);
	ck_assert_int_eq(cf.mta, CF_MTA_POSTFIX);
	ck_assert_int_eq(cf.syslog_facility, LOG_DAEMON);
	ok("tcp_wrappers = 1\ntcp_wrappers = no\nsyslog_facility = auth\n");
	ck_assert(!cf.tcp_wrappers);
	ck_assert_int_eq(cf.syslog_facility, LOG_AUTH);
	ok("mta = exec\nexec_command = /bin/true\n");
	ck_assert_int_eq(cf.mta, CF_MTA_EXEC);
	ck_assert_str_eq(cf.exec_command, "/bin/true");
}
END_TEST

START_TEST(test_comments_blank_lines)
{
	ok("# odmrd.conf\n"
	   "\n"
	   "   \n"
	   "\t# indented comment\n"
	   "  max_domains   =   7   # trailing comment\n"
	   "hostname=a.example\n"
	   "#max_domains = 9\n"
	   "idle_timeout = 45");  /* no final newline */
	ck_assert_uint_eq(cf.max_domains, 7);
	ck_assert_str_eq(cf.hostname, "a.example");
	ck_assert_uint_eq(cf.idle_timeout, 45);
}
END_TEST

START_TEST(test_repeated_key_last_wins)
{
	ok("hostname = a.example\nhostname = b.example\nmax_domains = 3\nmax_domains = 4\n");
	ck_assert_str_eq(cf.hostname, "b.example");
	ck_assert_uint_eq(cf.max_domains, 4);
}
END_TEST

START_TEST(test_unknown_key)
{
	refused("# first\n\nfrobnicate = 1\n", 3, "frobnicate: unknown key");
	refused("max_domains = 3\nMax_Domains = 4\n", 2, "unknown key");
	refused("sasl_ = x\n", 1, "unknown key");
}
END_TEST

START_TEST(test_not_key_value)
{
	refused("hostname a.example\n", 1, "key");
	refused("\n = 5\n", 2, "missing key");
}
END_TEST

START_TEST(test_bad_number)
{
	refused("max_domains = 12abc\n", 1, "whole number");
	refused("\nmax_domains = -1\n", 2, "whole number");
	refused("max_domains =\n", 1, "whole number");
	refused("max_domains = 0x10\n", 1, "whole number");
	refused("max_domains = +5\n", 1, "whole number");
	refused("max_domains = 1 2\n", 1, "whole number");
}
END_TEST

START_TEST(test_out_of_range)
{
	refused("atrn_timeout = 599\n", 1, "atrn_timeout: out of range (600-86400)");
	ok("atrn_timeout = 600\n");
	ck_assert_uint_eq(cf.atrn_timeout, 600);
	refused("atrn_timeout = 86401\n", 1, "out of range");
	refused("max_auth_failures = 0\n", 1, "out of range");
	refused("max_domains = 1001\n", 1, "out of range");
	refused("idle_timeout = 0\n", 1, "out of range");
	refused("junk_command_limit = 0\n", 1, "out of range");
	refused("error_delay_ms = 4294967296\n", 1, "");
	refused("error_delay_ms = 99999999999999999999999\n", 1, "");
}
END_TEST

START_TEST(test_bad_typed_values)
{
	refused("tcp_wrappers = maybe\n", 1, "yes or no");
	refused("syslog_facility = kern\n", 1, "facility");
	refused("mta = qmail\n", 1, "postfix, sendmail or exec");
	refused("customer_map = customers.db\n", 1, "absolute path");
	refused("run_dir =\n", 1, "absolute path");
	refused("hostname = bad host.example\n", 1, "hostname: has a character");
	refused("\nhostname = a.example;x\n", 2, "hostname: has a character");
}
END_TEST

START_TEST(test_empty_hostname)
{
	/* an empty greeting name ("220  ESMTP ...") is not a valid reply: refuse it or use the default */
	int rc = load("hostname =\n");
	ck_assert_msg(rc == -1 || (cf.hostname != NULL && cf.hostname[0] != '\0'),
		      "empty hostname accepted");
}
END_TEST

START_TEST(test_sasl_options)
{
	ok("sasl_mech_list = CRAM-MD5\n"
	   "sasl_pwcheck_method = auxprop\n"
	   "sasl_realm = example.net\n"
	   "sasl_plugin_dir = /usr/lib/sasl2\n"
	   "sasl_mech_list = SCRAM-SHA-256 CRAM-MD5\n");
	ck_assert_uint_eq(cf.n_sasl_opts, 2);
	ck_assert_str_eq(cf.sasl_opts[0].key, "mech_list");
	ck_assert_str_eq(cf.sasl_opts[0].value, "SCRAM-SHA-256 CRAM-MD5");
	ck_assert_str_eq(cf.sasl_opts[1].key, "pwcheck_method");
	ck_assert_str_eq(cf.sasl_opts[1].value, "auxprop");
	ck_assert_str_eq(cf.sasl_realm, "example.net");
	ck_assert_str_eq(cf.sasl_plugin_dir, "/usr/lib/sasl2");
	for (size_t i = 0; i < cf.n_sasl_opts; i++) {
		ck_assert_str_ne(cf.sasl_opts[i].key, "realm");
		ck_assert_str_ne(cf.sasl_opts[i].key, "plugin_dir");
		ck_assert(strncmp(cf.sasl_opts[i].key, "sasl_", 5) != 0);
	}
}
END_TEST

START_TEST(test_sasl_unknown_option)
{
	/* libsasl2 would ignore these without a word: the admin must hear of the typo */
	refused("sasl_mech_list = CRAM-MD5\nsasl_mech_lst = CRAM-MD5\n", 2,
		"sasl_mech_lst: unknown key");
	refused("sasl_sasldb = /etc/odmrd/sasldb2\n", 1, "sasl_sasldb: unknown key");
	refused("sasl_pwcheck = auxprop\n", 1, "libsasl2");
	ok("hostname = odmr.example.net\nsasl_sql_engine = sqlite3\nsasl_sql_database = /etc/odmrd/users.db\n"
	   "sasl_sql_select = SELECT password FROM users WHERE name = '%u'\n"
	   "sasl_ldapdb_uri = ldapi://\nsasl_saslauthd_path = /run/saslauthd/mux\n"
	   "sasl_log_level = 3\nsasl_scram_iteration_counter = 10000\n");
	ck_assert_uint_eq(cf.n_sasl_opts, 7);
	/* a value with '=' and quotes stays whole */
	ck_assert_str_eq(cf.sasl_opts[2].value, "SELECT password FROM users WHERE name = '%u'");
}
END_TEST

static unsigned n_reports;
static char reports[4][256];

static void count_report(void *ctx, const char *msg)
{
	(void)ctx;
	if (n_reports < 4)
		snprintf(reports[n_reports], sizeof reports[0], "%s", msg);
	n_reports++;
}

START_TEST(test_every_problem_reported)
{
	/* odmrd -t lists every bad line, not just the first */
	load("max_domains = 0\nfrobnicate = 1\nidle_timeout = x\nhostname = ok.example\n");
	n_reports = 0;
	cf_free(&cf);
	ck_assert_uint_eq(cf_parse(path, &cf, count_report, NULL), 3);
	ck_assert_uint_eq(n_reports, 3);
	ck_assert_msg(strstr(reports[0], ":1: max_domains: out of range (1-126)"), "%s", reports[0]);
	ck_assert_msg(strstr(reports[1], ":2: frobnicate: unknown key"), "%s", reports[1]);
	ck_assert_msg(strstr(reports[2], ":3: idle_timeout: must be a whole number"), "%s", reports[2]);
}
END_TEST

START_TEST(test_hostname_known_after_bad_line)
{
	/* the 421 for a broken file still names the configured host, wherever its line is */
	refused("bogus = 1\nhostname = odmr.example.net\n", 1, "bogus: unknown key");
	ck_assert_str_eq(cf.hostname, "odmr.example.net");
	refused("hostname = odmr.example.net\nmax_domains = 0\n", 2, "max_domains");
	ck_assert_str_eq(cf.hostname, "odmr.example.net");
}
END_TEST

START_TEST(test_print_changed)
{
	char *buf = NULL;
	size_t len = 0;

	ok("hostname = odmr.example.net\nmax_domains = 7\nidle_timeout = 300\n"
	   "tcp_wrappers = yes\nmta = sendmail\nsyslog_facility = local2\n"
	   "sasl_mech_list = CRAM-MD5\n");
	FILE *out = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(out);
	cf_print_changed(&cf, out);
	fclose(out);
	ck_assert_str_eq(buf, "hostname = odmr.example.net\nmax_domains = 7\ntcp_wrappers = yes\n"
			 "syslog_facility = local2\nmta = sendmail\nsasl_mech_list = CRAM-MD5\n");
	free(buf);
	/* nothing set: nothing printed (the name the host gives itself is the default) */
	ok("idle_timeout = 300\n");
	buf = NULL;
	out = open_memstream(&buf, &len);
	cf_print_changed(&cf, out);
	fclose(out);
	ck_assert_str_eq(buf, "");
	free(buf);
	/* tls_security_level's default follows tls_cert_file (may): not printed; encrypt is */
	ok("tls_cert_file = /c.pem\ntls_key_file = /k.pem\n");
	buf = NULL;
	out = open_memstream(&buf, &len);
	cf_print_changed(&cf, out);
	fclose(out);
	ck_assert_str_eq(buf, "tls_cert_file = /c.pem\ntls_key_file = /k.pem\n");
	free(buf);
	ok("tls_cert_file = /c.pem\ntls_key_file = /k.pem\ntls_security_level = encrypt\n");
	buf = NULL;
	out = open_memstream(&buf, &len);
	cf_print_changed(&cf, out);
	fclose(out);
	ck_assert_str_eq(buf, "tls_cert_file = /c.pem\ntls_key_file = /k.pem\ntls_security_level = encrypt\n");
	free(buf);
}
END_TEST

START_TEST(test_missing_file)
{
	const char *p = "/nonexistent-odmrd-dir/odmrd.conf";

	ck_assert_int_eq(cf_load(p, &cf, err, sizeof err), -1);
	ck_assert_msg(strstr(err, p) != NULL, "error \"%s\" lacks the path", err);
	ck_assert_msg(strstr(err, "No such file") != NULL, "error \"%s\" lacks the reason", err);
}
END_TEST

START_TEST(test_mta_exec_needs_command)
{
	refused("mta = exec\n", 0, "exec_command");
	refused("mta = exec\nexec_command = deliver --odmr\n", 0, "exec_command");
	ok("exec_command = /usr/bin/deliver\nmta = exec\n");
	ck_assert_int_eq(cf.mta, CF_MTA_EXEC);
}
END_TEST

START_TEST(test_hard_above_soft)
{
	refused("soft_error_limit = 5\nhard_error_limit = 5\n", 0,
		"hard_error_limit: must be above soft_error_limit");
	refused("soft_error_limit = 6\nhard_error_limit = 5\n", 0, "hard_error_limit");
	refused("soft_error_limit = 10\n", 0, "hard_error_limit");  /* default hard is 10 */
	ok("soft_error_limit = 5\nhard_error_limit = 6\n");
	ck_assert_uint_eq(cf.hard_error_limit, 6);
}
END_TEST

START_TEST(test_line_too_long)
{
	size_t n = 5000;
	char *t = malloc(n + 32);
	ck_assert_ptr_nonnull(t);
	strcpy(t, "max_domains = 5\nhostname = ");
	size_t o = strlen(t);
	memset(t + o, 'a', n);
	strcpy(t + o + n, "\n");
	refused(t, 2, "too long");
	free(t);
}
END_TEST

START_TEST(test_free_after_error)
{
	/* strings set before the failing line are released by cf_free (valgrind checks) */
	refused("hostname = a.example\nsasl_mech_list = PLAIN\nrun_dir = /x\nbogus = 1\n", 4,
		"unknown key");
	ck_assert_uint_eq(cf.n_sasl_opts, 1);
	cf_free(&cf);
	ck_assert_ptr_null(cf.hostname);
	ck_assert_uint_eq(cf.n_sasl_opts, 0);
}
END_TEST

START_TEST(test_tls_keys)
{
	/* No certificate: TLS off, and the module path is the compiled-in one. */
	ok("hostname = h.example\n");
	ck_assert_int_eq(cf.tls_security_level, CF_TLS_NONE);
	ck_assert_str_eq(cf.tls_module, CF_TLS_MODULE);
	ck_assert(!cf.tls_wrappermode && !cf.tls_auth_only);
	/* A certificate: "may" unless set. */
	ok("hostname = h.example\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\n");
	ck_assert_int_eq(cf.tls_security_level, CF_TLS_MAY);
	ck_assert_str_eq(cf.tls_cert_file, "/c.pem");
	ck_assert_str_eq(cf.tls_key_file, "/k.pem");
	ok("hostname = h.example\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\ntls_security_level = encrypt\n"
	   "tls_ca_file = /ca.pem\ntls_ticket_key_file = /t.key\ntls_auth_only = yes\ntls_wrappermode = yes\n"
	   "tls_module = /m.so\n");
	ck_assert_int_eq(cf.tls_security_level, CF_TLS_ENCRYPT);
	ck_assert_str_eq(cf.tls_ca_file, "/ca.pem");
	ck_assert_str_eq(cf.tls_ticket_key_file, "/t.key");
	ck_assert_str_eq(cf.tls_module, "/m.so");
	ck_assert(cf.tls_wrappermode && cf.tls_auth_only);
	ok("hostname = h.example\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\ntls_security_level = none\n");
	ck_assert_int_eq(cf.tls_security_level, CF_TLS_NONE);
	refused("tls_security_level = always\n", 1, "must be none, may or encrypt");
	refused("tls_cert_file = cert.pem\n", 1, "must be an absolute path");
}
END_TEST

START_TEST(test_tls_cross_checks)
{
	/* Configured TLS that cannot work is a configuration error, never a silent plaintext. */
	refused("hostname = h.example\ntls_cert_file = /c.pem\n", 0, "tls_cert_file and tls_key_file go together");
	refused("hostname = h.example\ntls_key_file = /k.pem\n", 0, "tls_cert_file and tls_key_file go together");
	refused("hostname = h.example\ntls_security_level = encrypt\n", 0, "needs tls_cert_file");
	refused("hostname = h.example\ntls_security_level = may\n", 0, "needs tls_cert_file");
	refused("hostname = h.example\ntls_wrappermode = yes\n", 0, "tls_wrappermode needs tls_cert_file");
	refused("hostname = h.example\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\ntls_security_level = none\n"
		"tls_wrappermode = yes\n", 0, "contradicts");
	refused("hostname = h.example\ntls_auth_only = yes\n", 0, "need tls_cert_file");
	refused("hostname = h.example\ntls_ca_file = /ca.pem\n", 0, "need tls_cert_file");
}
END_TEST

START_TEST(test_max_session_time)
{
	ok("hostname = h.example\n");
	ck_assert_uint_eq(cf.max_session_time, 4 * 3600);
	ok("hostname = h.example\nmax_session_time = 86400\n");
	ck_assert_uint_eq(cf.max_session_time, 86400);
	refused("max_session_time = 4\n", 1, "out of range");
	refused("max_session_time = 604801\n", 1, "out of range");
}
END_TEST

START_TEST(test_command_line_overrides)
{
	char *opts[] = { "tls_wrappermode = yes", "max_session_time=60" };
	char *bad[] = { "no_such_key=1" };

	load("hostname = h.example\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\n");
	cf_free(&cf);
	ck_assert_int_eq(cf_load_opts(path, opts, 2, &cf, err, sizeof err), 0);
	ck_assert(cf.tls_wrappermode);
	ck_assert_uint_eq(cf.max_session_time, 60);
	ck_assert_int_eq(cf.tls_security_level, CF_TLS_MAY);
	cf_free(&cf);
	ck_assert_int_eq(cf_load_opts(path, bad, 1, &cf, err, sizeof err), -1);
	ck_assert_str_eq(err, "-o no_such_key=1: no_such_key: unknown key");
	/* The cross-checks see the overrides too. */
	load("hostname = h.example\n");
	cf_free(&cf);
	ck_assert_int_eq(cf_load_opts(path, opts, 1, &cf, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "tls_wrappermode needs tls_cert_file"));
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, NULL, cfg_teardown);
	tcase_add_test(tc, test_cf_defaults);
	tcase_add_test(tc, test_empty_file_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_bool_and_enum_values);
	tcase_add_test(tc, test_comments_blank_lines);
	tcase_add_test(tc, test_repeated_key_last_wins);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_not_key_value);
	tcase_add_test(tc, test_bad_number);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_bad_typed_values);
	tcase_add_test(tc, test_empty_hostname);
	tcase_add_test(tc, test_sasl_options);
	tcase_add_test(tc, test_sasl_unknown_option);
	tcase_add_test(tc, test_every_problem_reported);
	tcase_add_test(tc, test_hostname_known_after_bad_line);
	tcase_add_test(tc, test_print_changed);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_mta_exec_needs_command);
	tcase_add_test(tc, test_hard_above_soft);
	tcase_add_test(tc, test_line_too_long);
	tcase_add_test(tc, test_free_after_error);
	tcase_add_test(tc, test_tls_keys);
	tcase_add_test(tc, test_tls_cross_checks);
	tcase_add_test(tc, test_max_session_time);
	tcase_add_test(tc, test_command_line_overrides);
	suite_add_tcase(s, tc);
	return s;
}
