/*
 * admin.c - odmrd -t, -n and -V: what an admin runs from a shell, never what inetd starts.
 *
 * -t reads the configuration and checks, as the account sessions run as, everything a session
 * will need: the file itself, the customer map, the SASL plugins and password store, the run
 * directory, and the MTA's commands and set-up. Each problem is one line on stderr naming what to
 * fix; the exit status is non-zero if any is an error. -n prints the settings that differ from the
 * defaults, -V the version.
 *
 * Trusts: the command line and the configuration (root's). Invariants: the checks that depend on
 * the account run in a child that has dropped to it (primary group only, as xinetd starts odmrd
 * without "groups = yes"), so root's rights never make a check pass; no shell; every command has a
 * deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "config.h"
#include "domains.h"
#include "rundir.h"
#include "spawn.h"
#include "tls_load.h"

#ifndef ODMRD_VERSION
#define ODMRD_VERSION "unknown"
#endif

#define ADM_CMD_TIMEOUT_MS 15000   /* postqueue/postconf/sendmail must answer within this */
#define ADM_TRANSPORT "odmrl"      /* the lmtp service odmrd-map's table routes to */
#define ADM_ACCOUNT "_odmrd"       /* the package's account, when run by root without `user` */

/* Problem counts; a child's are added to its parent's through a pipe. */
struct adm_count {
	unsigned errors, warnings;
};

static struct adm_count adm_n;
/* odmrd -o key=value settings, applied over the file's. */
static char *const *adm_opts;
static size_t adm_nopts;

/* One problem line on stderr. */
static void adm_say(bool error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void adm_say(bool error, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "odmrd: %s: ", error ? "error" : "warning");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (error)
		adm_n.errors++;
	else
		adm_n.warnings++;
}

/* cf_report_fn: every configuration problem is an error. */
static void adm_cf_report(void *ctx, const char *msg)
{
	(void)ctx;
	adm_say(true, "%s", msg);
}

/* Parse CFPATH reporting every problem; with none, load it completely (default hostname). */
static unsigned adm_load(const char *cfpath, struct config *cf)
{
	char err[512];
	unsigned n = cf_parse_opts(cfpath, adm_opts, adm_nopts, cf, adm_cf_report, NULL);

	if (n == 0) {
		cf_free(cf);
		if (cf_load_opts(cfpath, adm_opts, adm_nopts, cf, err, sizeof err) != 0) {
			adm_say(true, "%s", err);
			n = 1;
		}
	}
	return n;
}

/*
 * Run ARGV (no shell, PATH-only environment) with stdout and stderr into OUT (the first LEN-1
 * octets, NUL-terminated), killed after the deadline. Returns the exit status, -1 on failure.
 */
static int adm_run(char *const argv[], char *out, size_t len)
{
	int p[2], st;
	size_t got = 0;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = spawn_exec(argv, -1, p[1], p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = ADM_CMD_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		if (left <= 0 || (poll(&pf, 1, (int)left) < 0 && errno != EINTR)) {
			kill(pid, SIGKILL);
			snprintf(out, len, "%s did not answer within %d s", argv[0], ADM_CMD_TIMEOUT_MS / 1000);
			got = strlen(out);
			break;
		}
		char buf[1024];
		ssize_t n = read(p[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t k = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;
		memcpy(out + got, buf, k);
		got += k;
		out[got] = '\0';
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first line of S, for a one-line message. */
static const char *adm_line1(char *s)
{
	s[strcspn(s, "\n")] = '\0';
	return s[0] ? s : "(no output)";
}

/* True if WORD appears in LIST as a whole word (blank- or comma-separated). */
static bool adm_has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
		bool start = p == list || strchr(" \t,", p[-1]);
		if (start && (p[n] == '\0' || strchr(" \t,\n", p[n])))
			return true;
	}
	return false;
}

/* The account sessions run as: `user`, else _odmrd when root runs -t, else whoever runs it. */
static int adm_account(const struct config *cf, struct passwd *pw, char *name, size_t len)
{
	const struct passwd *p = NULL;

	if (cf->user != NULL) {
		if ((p = getpwnam(cf->user)) == NULL) {
			adm_say(true, "user %s: no such account", cf->user);
			return -1;
		}
	} else if (geteuid() == 0 && (p = getpwnam(ADM_ACCOUNT)) != NULL) {
		;
	} else if ((p = getpwuid(geteuid())) == NULL) {
		adm_say(true, "uid %ld has no account name", (long)geteuid());
		return -1;
	}
	*pw = *p;
	snprintf(name, len, "%s", p->pw_name);
	pw->pw_name = name;
	return 0;
}

/* The customer map: present, a GDBM file this account can read, not readable by everyone. */
static void adm_check_map(const struct config *cf)
{
	struct stat st;
	struct dom_list l;
	char why[512];

	if (stat(cf->customer_map, &st) != 0) {
		adm_say(true, "customer_map %s: %s (build it with odmrd-map)", cf->customer_map, strerror(errno));
		return;
	}
	switch (dom_lookup(cf->customer_map, "odmrd-t-no-such-user", NULL, &l, why, sizeof why)) {
	case DOM_OK:
		dom_free(&l);
		break;
	case DOM_NOUSER:
		break;
	default:
		adm_say(true, "customer_map: %s", why);
		return;
	}
	if (st.st_mode & S_IROTH)
		adm_say(false, "customer_map %s is readable by every local user (odmrd-map writes it 0640)",
			cf->customer_map);
}

/* SASL: every listed mechanism has a plugin, and the password store answers. */
static void adm_check_sasl(const struct config *cf)
{
	char err[512];
	struct auth *a = auth_open(cf, NULL, NULL, err, sizeof err);

	if (a == NULL) {
		adm_say(true, "SASL: %s", err);
		return;
	}
	/* A session sets libsasl2 up at its first EHLO; here it is done at once. */
	bool ready = auth_ready(a, err, sizeof err) == 0;
	if (!ready)
		adm_say(true, "SASL: %s", err);
	const char *list = "CRAM-MD5";
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (!strcmp(cf->sasl_opts[i].key, "mech_list"))
			list = cf->sasl_opts[i].value;
	/*
	 * PLAIN and LOGIN are offered only under TLS, EXTERNAL only with a verified client
	 * certificate, the -PLUS mechanisms only with a channel binding: ask again as a TLS session
	 * with all three (made up) would.
	 */
	char clear[1024], tls[1024] = "";
	snprintf(clear, sizeof clear, "%s", auth_mechs(a));
	if (cf->tls_cert_file != NULL) {
		static const unsigned char cb[32];
		if (auth_tls(a, 256, "odmrd-t", "tls-exporter", cb, sizeof cb) == AUTH_OK)
			snprintf(tls, sizeof tls, "%s", auth_mechs(a));
	}
	char *copy = strdup(list), *save = NULL;
	for (char *m = copy ? strtok_r(copy, " \t,", &save) : NULL; m; m = strtok_r(NULL, " \t,", &save)) {
		size_t ml = strlen(m);
		bool tls_only = !strcasecmp(m, "PLAIN") || !strcasecmp(m, "LOGIN") || !strcasecmp(m, "EXTERNAL") ||
			(ml > 5 && !strcasecmp(m + ml - 5, "-PLUS"));
		if (!strcasecmp(m, "ANONYMOUS"))
			adm_say(false, "sasl_mech_list: ANONYMOUS is never offered");
		else if (adm_has_word(clear, m) || adm_has_word(tls, m))
			continue;
		else if (tls_only && cf->tls_cert_file == NULL)
			adm_say(false, "sasl_mech_list: %s is offered only under TLS, and tls_cert_file is not set", m);
		else
			adm_say(true, "sasl_mech_list: %s: no SASL plugin offers it (installed? sasl_plugin_dir?)", m);
	}
	free(copy);
	if (ready && auth_check_store(a, err, sizeof err) != 0)
		adm_say(true, "SASL password store: %s", err);
	auth_close(a);
}

/*
 * run_dir, as the account: the checks odmrd itself makes before it serves (owner, no "other"
 * bits, the MTA's account can reach the sockets), and that it can bind sockets there.
 */
static void adm_check_rundir(const struct config *cf)
{
	char why[512];
	uid_t mu;
	gid_t mg;

	if (access(cf->run_dir, F_OK) != 0) {
		adm_say(false, "run_dir %s: %s (created at boot by the package's tmpfiles.d line, or by "
			"odmrd itself when started as root)", cf->run_dir, strerror(errno));
		return;
	}
	if (rd_check(cf, why, sizeof why) != 0)
		adm_say(true, "%s: odmrd refuses to serve (ATRN gets 451)", why);
	else if (access(cf->run_dir, W_OK | X_OK) != 0)
		adm_say(true, "run_dir %s: this account cannot create sockets there: %s", cf->run_dir,
			strerror(errno));
	if (cf->mta != CF_MTA_EXEC &&
	    (rd_mta_ids(cf, &mu, &mg, why, sizeof why) != 0 || rd_check_group(cf, mu, mg, why, sizeof why) != 0))
		adm_say(true, "%s", why);
}

/* postqueue -j as the account: odmrd's queue probe. */
static void adm_check_postqueue(const struct config *cf)
{
	char out[512];
	char *argv[] = { cf->postqueue, "-j", NULL, NULL, NULL };

	if (cf->postfix_config_dir != NULL) {
		argv[1] = "-c";
		argv[2] = cf->postfix_config_dir;
		argv[3] = "-j";
	}
	int rc = adm_run(argv, out, sizeof out);
	if (rc != 0)
		adm_say(true, "%s -j (the queue probe) failed with status %d: %s", cf->postqueue, rc, adm_line1(out));
}

/* The checks that depend on the account, in a child dropped to it; counts come back in a pipe. */
static void adm_as_account(const struct config *cf, const char *cfpath, const struct passwd *pw)
{
	int p[2];
	struct adm_count got = { 0, 0 };

	fflush(stderr);
	if (pipe(p) != 0) {
		adm_say(true, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		adm_say(true, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		adm_n = (struct adm_count){ 0, 0 };
		if (geteuid() == 0 && pw->pw_uid != 0 &&
		    (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)) {
			adm_say(true, "cannot become %s: %s", pw->pw_name, strerror(errno));
		} else {
			if (access(cfpath, R_OK) != 0)
				adm_say(true, "%s: %s cannot read it: %s", cfpath, pw->pw_name, strerror(errno));
			adm_check_map(cf);
			adm_check_sasl(cf);
			adm_check_rundir(cf);
			if (cf->mta == CF_MTA_POSTFIX)
				adm_check_postqueue(cf);
		}
		fflush(stderr);
		if (write(p[1], &adm_n, sizeof adm_n) != (ssize_t)sizeof adm_n)
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	ssize_t n;
	while ((n = read(p[0], &got, sizeof got)) < 0 && errno == EINTR)
		;
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof got)
		adm_say(true, "the checks as %s did not finish", pw->pw_name);
	adm_n.errors += got.errors;
	adm_n.warnings += got.warnings;
}

/* Sendmail refuses sockets in a group- or world-writable directory ("unsafe domain socket"). */
static void adm_check_rundir_sendmail(const struct config *cf)
{
	struct stat st;

	if (stat(cf->run_dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)))
		adm_say(true, "run_dir %s is group- or world-writable: sendmail refuses its sockets as unsafe",
			cf->run_dir);
}

/* postconf [-c DIR] ARGS... into OUT; the path of postconf is postqueue's directory. */
static int adm_postconf(const struct config *cf, const char *a1, const char *a2, char *out, size_t len)
{
	char path[4096], *copy = strdup(cf->postqueue);
	char *argv[8];
	int n = 0;

	if (copy == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/postconf", dirname(copy));
	free(copy);
	argv[n++] = path;
	if (cf->postfix_config_dir != NULL) {
		argv[n++] = "-c";
		argv[n++] = cf->postfix_config_dir;
	}
	argv[n++] = (char *)a1;
	argv[n++] = (char *)a2;
	argv[n] = NULL;
	return adm_run(argv, out, len);
}

/* Postfix's side as the README sets it up: the odmrl service, the table, the hold. */
static void adm_check_postfix(const struct config *cf)
{
	char out[4096], want[4200];

	if (access(cf->postqueue, X_OK) != 0) {
		adm_say(true, "postqueue %s: %s", cf->postqueue, strerror(errno));
		return;
	}
	if (adm_postconf(cf, "-M", ADM_TRANSPORT "/unix", out, sizeof out) != 0) {
		adm_say(true, "postconf -M failed: %s", adm_line1(out));
		return;
	}
	char svc[64], type[64], priv[8], unpriv[8], chroot[8];
	if (sscanf(out, "%63s %63s %7s %7s %7s", svc, type, priv, unpriv, chroot) != 5 ||
	    strcmp(svc, ADM_TRANSPORT) != 0 || strcmp(type, "unix") != 0)
		adm_say(true, "Postfix's master.cf has no %s service (postconf -M: see README, Postfix)",
			ADM_TRANSPORT);
	else if (!strcmp(chroot, "y"))
		adm_say(true, "master.cf: %s runs chrooted: it cannot reach %s (set its chroot column to n)",
			ADM_TRANSPORT, cf->run_dir);
	if (adm_postconf(cf, "-h", "defer_transports", out, sizeof out) == 0 &&
	    !adm_has_word(out, ADM_TRANSPORT))
		adm_say(false, "Postfix's defer_transports lacks %s: held mail is tried (and deferred) on every "
			"queue run", ADM_TRANSPORT);
	if (cf->postfix_transport == NULL) {
		adm_say(false, "postfix_transport is not set: odmrd-map writes no transport table, Postfix's "
			"routes to odmrd must be kept by hand");
		return;
	}
	snprintf(want, sizeof want, "hash:%s", cf->postfix_transport);
	const char *params[] = { "transport_maps", "relay_domains" };
	for (size_t i = 0; i < 2; i++)
		if (adm_postconf(cf, "-h", params[i], out, sizeof out) == 0 && !adm_has_word(out, want))
			adm_say(true, "Postfix's %s does not name %s (odmrd-map's table): customers' mail is %s",
				params[i], want, i == 0 ? "not routed to odmrd" : "refused from other hosts");
	snprintf(want, sizeof want, "%s.db", cf->postfix_transport);
	if (access(want, R_OK) != 0)
		adm_say(true, "%s: %s (run odmrd-map)", want, strerror(errno));
}

/* qsort/bsearch comparator for mailer names. */
static int adm_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The mailer names sendmail.cf defines ("Mname, ..." lines), sorted; NULL and *n = 0 if none. */
static char **adm_cf_mailers(FILE *scf, size_t *n)
{
	char line[1024], name[300], **v = NULL;
	size_t cap = 0;

	*n = 0;
	while (fgets(line, sizeof line, scf) != NULL) {
		if (sscanf(line, "M%299[^,],", name) != 1)
			continue;
		if (*n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
			if (nv == NULL)
				break;
			v = nv;
		}
		if ((v[*n] = strdup(name)) == NULL)
			break;
		(*n)++;
	}
	if (*n)
		qsort(v, *n, sizeof *v, adm_cmp);
	return v;
}

/* Sendmail: the command, and a .cf built with odmrd-map's current mailers. */
static void adm_check_sendmail(const struct config *cf)
{
	if (access(cf->sendmail, X_OK) != 0) {
		adm_say(true, "sendmail %s: %s", cf->sendmail, strerror(errno));
		return;
	}
	if (cf->sendmail_m4 == NULL) {
		adm_say(false, "sendmail_m4 is not set: odmrd-map writes no Sendmail mailers, they must be kept by hand");
		return;
	}
	const char *cfpath = cf->sendmail_cf ? cf->sendmail_cf : "/etc/mail/sendmail.cf";
	FILE *m4 = fopen(cf->sendmail_m4, "re"), *scf = fopen(cfpath, "re");
	if (m4 == NULL || scf == NULL) {
		adm_say(true, "%s: %s%s", m4 ? cfpath : cf->sendmail_m4, strerror(errno), m4 ? "" : " (run odmrd-map)");
		if (m4)
			fclose(m4);
		if (scf)
			fclose(scf);
		return;
	}
	size_t n;
	char **have = adm_cf_mailers(scf, &n), line[1024], name[300];
	unsigned missing = 0;
	fclose(scf);
	/* Every mailer the fragment defines must be in the .cf sendmail actually reads. */
	while (fgets(line, sizeof line, m4) != NULL) {
		char *key = name;
		if (sscanf(line, "`M%299[^,],", name) != 1 || (n && bsearch(&key, have, n, sizeof *have, adm_cmp)))
			continue;
		if (missing++ == 0)
			adm_say(true, "%s has no mailer %s from %s: rebuild sendmail.cf (Debian: make -C /etc/mail)",
				cfpath, name, cf->sendmail_m4);
	}
	fclose(m4);
	if (missing > 1)
		adm_say(true, "%s lacks %u of odmrd-map's mailers in all", cfpath, missing);
	for (size_t i = 0; i < n; i++)
		free(have[i]);
	free(have);
}

/* odmrd -t. */
static int adm_check(const char *cfpath)
{
	struct config cf;
	struct passwd pw;
	char name[256] = "-";

	/* libsasl2's own complaints reach the admin's terminal too (LOG_PERROR). */
	openlog("odmrd", LOG_PID | LOG_PERROR, LOG_MAIL);
	if (adm_load(cfpath, &cf) != 0) {
		cf_free(&cf);
		fprintf(stderr, "odmrd: %s: %u error(s)\n", cfpath, adm_n.errors);
		return 1;
	}
	if (strchr(cf.hostname, '.') == NULL)
		adm_say(false, "hostname %s is not fully qualified: customers see it in the greeting and EHLO "
			"(set hostname in %s)", cf.hostname, cfpath);
	/* As odmrd reads them: with its start-up privileges (before any drop to the account). */
	char tlserr[512];
	if (cf.tls_cert_file != NULL && tls_check_config(&cf, tlserr, sizeof tlserr) != 0)
		adm_say(true, "TLS: %s", tlserr);
	if (adm_account(&cf, &pw, name, sizeof name) == 0)
		adm_as_account(&cf, cfpath, &pw);
	if (cf.mta == CF_MTA_POSTFIX) {
		adm_check_postfix(&cf);
	} else if (cf.mta == CF_MTA_SENDMAIL) {
		adm_check_rundir_sendmail(&cf);
		adm_check_sendmail(&cf);
	} else if (cf.mta == CF_MTA_EXEC) {
		char prog[4096];
		snprintf(prog, sizeof prog, "%.*s", (int)strcspn(cf.exec_command, " \t"), cf.exec_command);
		if (access(prog, X_OK) != 0)
			adm_say(true, "exec_command %s: %s", prog, strerror(errno));
	}
	cf_free(&cf);
	if (adm_n.errors) {
		fprintf(stderr, "odmrd: %s: %u error(s), %u warning(s), checked as %s\n", cfpath, adm_n.errors,
			adm_n.warnings, name);
		return 1;
	}
	printf("odmrd: %s: OK (%u warning(s)), checked as %s\n", cfpath, adm_n.warnings, name);
	return 0;
}

/* See admin.h. */
int admin_main(int opt, const char *cfpath, char *const *opts, size_t n)
{
	struct config cf;

	adm_opts = opts;
	adm_nopts = n;

	switch (opt) {
	case 'V':
		printf("odmrd %s\n", ODMRD_VERSION);
		return 0;
	case 'n':
		if (adm_load(cfpath, &cf) != 0) {
			cf_free(&cf);
			return 1;
		}
		cf_print_changed(&cf, stdout);
		cf_free(&cf);
		return 0;
	default:
		return adm_check(cfpath);
	}
}
