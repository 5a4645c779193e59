/*
 * odmrd-map.c - build and query odmrd's customer map (GDBM), and the MTA tables derived from it.
 *
 *   odmrd-map [-f CONFIG] [-g GROUP] FILE   read FILE (text), replace FILE.db and the MTA tables
 *   odmrd-map [-f CONFIG] -q USER FILE      print USER's domains from FILE.db; exit 0/1/2
 *
 * Source format: one customer a line, "user  domain[, domain ...]" (commas and/or white space),
 * '#' starts a comment. The source is the one place an admin lists customers' domains: from it
 * odmrd-map also writes, when odmrd.conf names them, Postfix's transport table (whose keys are
 * relay_domains too) and a Sendmail .mc fragment (one [IPC] mailer, route and relay permission
 * per domain: one shared mailer would mix customers, see odmrd-map(8)).
 *
 * Trusts the admin's file no more than the network: every domain is checked with the same
 * dom_valid() odmrd uses. Invariants: on any error nothing is replaced; a reader never sees a
 * half-built file (each is written to a temporary name, fsync'd and renamed); the MTA tables are
 * renamed before the map, so a customer is never granted a domain the MTA does not route to odmrd;
 * no shell: postmap runs by execve with a fixed argv.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "domains.h"
#include "spawn.h"

#define MAP_USER_MAX 255
#define MAP_DEFAULT_GROUP "_odmrd"
#define MAP_TRANSPORT "odmrl"     /* the master.cf lmtp service the README sets up */
#define MAP_MODE 0640             /* the map names every customer: not world-readable */

/* Every domain of the source, for the MTA tables (sorted and made unique before use). */
struct map_doms {
	char **v;
	size_t n, cap;
};

/* One temporary file on its way to its final name. */
struct map_out {
	char tmp[4096], dst[4096];
	bool made;
};

/* Report a usage error. */
static int map_usage(void)
{
	fprintf(stderr, "usage: odmrd-map [-f config] [-g group] FILE\n"
			"       odmrd-map [-f config] -q USER FILE\n");
	return 2;
}

/* Store one validated line; duplicate users are an error. */
static int map_store(GDBM_FILE db, const char *src, unsigned lineno, const char *user,
		     const struct dom_list *l)
{
	char value[8192];
	datum k = { .dptr = (char *)user, .dsize = (int)strlen(user) };

	if (strlen(dom_join(l, value, sizeof value)) >= sizeof value - 1 || strstr(value, "...")) {
		fprintf(stderr, "odmrd-map: %s:%u: too many domains for %s\n", src, lineno, user);
		return -1;
	}
	datum v = { .dptr = value, .dsize = (int)strlen(value) };
	int rc = gdbm_store(db, k, v, GDBM_INSERT);
	if (rc == 1) {
		fprintf(stderr, "odmrd-map: %s:%u: user %s listed twice\n", src, lineno, user);
		return -1;
	}
	if (rc != 0) {
		fprintf(stderr, "odmrd-map: %s:%u: %s\n", src, lineno, gdbm_strerror(gdbm_errno));
		return -1;
	}
	return 0;
}

/* Remember L's domains for the MTA tables (only when some table is written). */
static int map_collect(struct map_doms *d, const struct dom_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (d->n == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 64;
			char **v = realloc(d->v, cap * sizeof *v);
			if (v == NULL)
				return -1;
			d->v = v;
			d->cap = cap;
		}
		if ((d->v[d->n] = strdup(l->v[i])) == NULL)
			return -1;
		d->n++;
	}
	return 0;
}

/* Parse the source into DB (and D, if not NULL); returns the number of errors. */
static int map_parse(FILE *in, const char *src, GDBM_FILE db, struct map_doms *d)
{
	char line[8192];
	unsigned lineno = 0;
	int errors = 0;

	while (fgets(line, sizeof line, in) != NULL) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			fprintf(stderr, "odmrd-map: %s:%u: line too long\n", src, lineno);
			return errors + 1;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			continue;
		char *user = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
		size_t rest = strlen(p);
		while (rest > 0 && isspace((unsigned char)p[rest - 1]))
			p[--rest] = '\0';
		struct dom_list l;
		if (strlen(user) > MAP_USER_MAX || strchr(user, ',')) {
			fprintf(stderr, "odmrd-map: %s:%u: bad user name\n", src, lineno);
			errors++;
			continue;
		}
		if (dom_parse_list(p, rest, &l) != DOM_OK) {
			fprintf(stderr, "odmrd-map: %s:%u: %s: missing or invalid domain (RFC 2645 syntax)\n",
				src, lineno, user);
			errors++;
			continue;
		}
		if (map_store(db, src, lineno, user, &l) != 0)
			errors++;
		else if (d != NULL && map_collect(d, &l) != 0) {
			fprintf(stderr, "odmrd-map: out of memory\n");
			errors++;
		}
		dom_free(&l);
	}
	if (ferror(in)) {
		fprintf(stderr, "odmrd-map: %s: read error\n", src);
		errors++;
	}
	return errors;
}

/* qsort comparator for domain names. */
static int map_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort D and drop repeats (two customers may share a domain; the MTA routes it once). */
static void map_unique(struct map_doms *d)
{
	size_t o = 0;

	if (d->n)
		qsort(d->v, d->n, sizeof *d->v, map_cmp);
	for (size_t i = 0; i < d->n; i++) {
		if (o > 0 && !strcmp(d->v[o - 1], d->v[i]))
			free(d->v[i]);
		else
			d->v[o++] = d->v[i];
	}
	d->n = o;
}

/*
 * Check that every domain's socket path fits a unix socket address and that run_dir is safe
 * inside the tables (no blanks for Postfix's table; no m4 quote characters, and no comma, which
 * ends a field of a mailer definition, for Sendmail).
 */
static int map_check_paths(const struct config *cf, const struct map_doms *d)
{
	struct sockaddr_un sun;
	int errors = 0;

	for (const char *p = cf->run_dir; *p; p++)
		if (isspace((unsigned char)*p) || *p == '`' || *p == '\'' || *p == '#' || *p == ',') {
			fprintf(stderr, "odmrd-map: run_dir %s: blanks, commas, quotes and '#' cannot go in the MTA tables\n",
				cf->run_dir);
			return 1;
		}
	for (size_t i = 0; i < d->n; i++)
		if (strlen(cf->run_dir) + 1 + strlen(d->v[i]) >= sizeof sun.sun_path) {
			fprintf(stderr, "odmrd-map: %s: socket path %s/%s is longer than a unix socket allows (%zu)\n",
				d->v[i], cf->run_dir, d->v[i], sizeof sun.sun_path - 1);
			errors++;
		}
	return errors;
}

/* fsync the directory holding PATH so a rename survives a crash. */
static void map_sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Name the temporary sibling of DST. */
static int map_out_init(struct map_out *o, const char *dst, const char *suffix)
{
	o->made = false;
	if ((size_t)snprintf(o->dst, sizeof o->dst, "%s%s", dst, suffix) >= sizeof o->dst ||
	    (size_t)snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld%s", dst, (long)getpid(), suffix) >=
		    sizeof o->tmp) {
		fprintf(stderr, "odmrd-map: %s: path too long\n", dst);
		return -1;
	}
	return 0;
}

/* Write TEXT (LEN octets) to O's temporary file with MODE, on disk before we return. */
static int map_write_tmp(struct map_out *o, const char *text, size_t len, mode_t mode)
{
	int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		fprintf(stderr, "odmrd-map: %s: %s\n", o->tmp, strerror(errno));
		return -1;
	}
	o->made = true;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "odmrd-map: %s: %s\n", o->tmp, strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
		fprintf(stderr, "odmrd-map: %s: %s\n", o->tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Run ARGV[0] without a shell (PATH-only environment, stdin /dev/null, output to our stderr or,
 * QUIET, to /dev/null); its exit status.
 */
static int map_run(char *const argv[], bool quiet)
{
	int st;
	pid_t pid = spawn_exec(argv, -1, quiet ? -1 : 2, quiet ? -1 : 2);

	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Postfix: "DOMAIN  odmrl:unix:RUN_DIR/DOMAIN" lines, compiled by postmap into a hash: table.
 * postmap builds TMP.db from TMP; both are renamed later, the .db first.
 */
static int map_postfix(const struct config *cf, const char *src, const struct map_doms *d,
		       struct map_out *txt, struct map_out *db)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return -1;
	fprintf(f, "# Written by odmrd-map from %s: do not edit, run odmrd-map after changing that.\n"
		   "# Each customer domain goes to odmrd's socket for it, through the %s lmtp service.\n",
		src, MAP_TRANSPORT);
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%s\t%s:unix:%s/%s\n", d->v[i], MAP_TRANSPORT, cf->run_dir, d->v[i]);
	fclose(f);
	int rc = map_out_init(txt, cf->postfix_transport, "") || map_out_init(db, cf->postfix_transport, ".db") ||
		 map_write_tmp(txt, text, len, 0644) ? -1 : 0;
	free(text);
	if (rc != 0)
		return -1;
	char arg[4200];
	snprintf(arg, sizeof arg, "hash:%s", txt->tmp);
	char *argv[] = { cf->postmap, arg, NULL, NULL, NULL };
	if (cf->postfix_config_dir != NULL) {
		argv[1] = "-c";
		argv[2] = cf->postfix_config_dir;
		argv[3] = arg;
	}
	db->made = true;  /* postmap may have left a partial file behind */
	if ((rc = map_run(argv, false)) != 0) {
		fprintf(stderr, "odmrd-map: %s failed (status %d)\n", cf->postmap, rc);
		return -1;
	}
	if (chmod(db->tmp, 0644) != 0) {
		fprintf(stderr, "odmrd-map: %s: %s\n", db->tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Make a running Postfix use the new table now: its daemons notice a changed hash: file only "after
 * a while" (a domain added was still bounced by the old routes right after the rename).
 */
static int map_postfix_reload(const struct config *cf)
{
	char path[4096], *copy = strdup(cf->postmap);

	if (copy == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/postfix", dirname(copy));
	free(copy);
	char *argv[] = { path, "status", NULL, NULL, NULL };
	if (cf->postfix_config_dir != NULL) {
		argv[1] = "-c";
		argv[2] = cf->postfix_config_dir;
		argv[3] = "status";
	}
	if (map_run(argv, true) != 0)
		return 0;  /* not running: it reads the new table when it starts */
	argv[cf->postfix_config_dir ? 3 : 1] = "reload";
	int rc = map_run(argv, false);
	if (rc != 0)
		fprintf(stderr, "odmrd-map: %s reload failed (status %d): the tables are written, reload Postfix\n",
			path, rc);
	return rc == 0 ? 0 : -1;
}

/* Sendmail's name for DOMAIN's mailer: one token in rulesets ('.' is an operator there, '-' not). */
static void map_mailer(const char *domain, char *out, size_t len)
{
	size_t o = snprintf(out, len, "odmr_");
	for (const char *p = domain; *p && o + 1 < len; p++)
		out[o++] = *p == '.' ? '_' : *p;
	out[o] = '\0';
}

/*
 * Sendmail: a .mc fragment, included as the last line of sendmail.mc. Per domain: relaying
 * allowed (class R), its own [IPC] mailer on RUN_DIR/DOMAIN, and a ruleset 0 route to it. Every
 * line is m4-quoted so no word of a domain or path can be taken for an m4 macro.
 */
static int map_sendmail(const struct config *cf, const char *src, const struct map_doms *d,
			struct map_out *m4)
{
	char *text = NULL, name[300];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return -1;
	/* dnl comments: sendmail's cf.m4 turns '#' comments off, so m4 would expand words in them. */
	fprintf(f, "divert(-1)dnl\n"
		   "dnl Written by odmrd-map from %s: do not edit, run odmrd-map after changing that.\n"
		   "dnl Name this file in the last line of sendmail.mc, then rebuild sendmail.cf.\n"
		   "dnl Each customer domain: relaying allowed, its own [IPC] mailer on odmrd's socket\n"
		   "dnl (a shared one would carry one customer's mail into another's socket: sendmail\n"
		   "dnl caches unix-socket connections under the host name localhost), and a route to\n"
		   "dnl it ahead of the mailertable.\n"
		   "divert(0)dnl\n",
		src);
	/* What RELAY_DOMAIN() writes, without its macro: it would rescan the name (divert.example). */
	fprintf(f, "divert(5)dnl\n");
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "`C{R}%s'\n", d->v[i]);
	fprintf(f, "MAILER_DEFINITIONS\n");
	for (size_t i = 0; i < d->n; i++) {
		map_mailer(d->v[i], name, sizeof name);
		fprintf(f, "`M%s, P=[IPC], F=mDFMuXa, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\\r\\n, L=990,'\n"
			   "`\t\tT=DNS/RFC822/SMTP, A=FILE %s/%s'\n", name, cf->run_dir, d->v[i]);
	}
	fprintf(f, "LOCAL_RULE_0\n");
	for (size_t i = 0; i < d->n; i++) {
		map_mailer(d->v[i], name, sizeof name);
		fprintf(f, "`R$* < @ %s . > $*\t$#%s $@ localhost $: $1 < @ %s . > $2'\n"
			   "`R$* < @ %s > $*\t$#%s $@ localhost $: $1 < @ %s > $2'\n",
			d->v[i], name, d->v[i], d->v[i], name, d->v[i]);
	}
	fprintf(f, "divert(0)dnl\n");
	fclose(f);
	int rc = map_out_init(m4, cf->sendmail_m4, "") || map_write_tmp(m4, text, len, 0644) ? -1 : 0;
	free(text);
	return rc;
}

/* The group the map is given: -g, customer_map_group, the primary group of `user`, or _odmrd. */
static int map_group(const struct config *cf, const char *opt, gid_t *gid)
{
	const char *name = opt ? opt : cf->customer_map_group;

	if (name == NULL && cf->user != NULL) {
		struct passwd *pw = getpwnam(cf->user);
		if (pw == NULL) {
			fprintf(stderr, "odmrd-map: user %s (odmrd.conf) does not exist\n", cf->user);
			return -1;
		}
		*gid = pw->pw_gid;
		return 0;
	}
	if (name == NULL)
		name = MAP_DEFAULT_GROUP;
	struct group *gr = getgrnam(name);
	if (gr == NULL) {
		fprintf(stderr, "odmrd-map: group %s does not exist (set customer_map_group in odmrd.conf, or -g)\n",
			name);
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

/* Give the map its group and mode 0640 (odmrd reads it as an unprivileged account). */
static int map_protect(GDBM_FILE db, const char *tmp, gid_t gid)
{
	int fd = gdbm_fdesc(db);

	if (fchown(fd, (uid_t)-1, gid) != 0 || fchmod(fd, MAP_MODE) != 0) {
		fprintf(stderr, "odmrd-map: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/* Rename O into place (nothing if it was not made). */
static int map_commit(struct map_out *o)
{
	if (!o->made)
		return 0;
	if (rename(o->tmp, o->dst) != 0) {
		fprintf(stderr, "odmrd-map: rename %s: %s\n", o->dst, strerror(errno));
		return -1;
	}
	o->made = false;
	map_sync_dir(o->dst);
	return 0;
}

/* Build SRC.db and the configured MTA tables from SRC, all or nothing. */
static int map_build(const char *src, const struct config *cf, const char *group)
{
	struct map_out map, tr_txt = { .made = false }, tr_db = { .made = false }, m4 = { .made = false };
	struct map_doms doms = { 0 };
	bool tables = cf->postfix_transport != NULL || cf->sendmail_m4 != NULL;
	gid_t gid;
	FILE *in = fopen(src, "re");

	if (in == NULL) {
		fprintf(stderr, "odmrd-map: %s: %s\n", src, strerror(errno));
		return 2;
	}
	if (map_group(cf, group, &gid) != 0 || map_out_init(&map, src, ".db") != 0) {
		fclose(in);
		return 2;
	}
	GDBM_FILE db = gdbm_open(map.tmp, 0, GDBM_NEWDB | GDBM_CLOEXEC, MAP_MODE, NULL);
	if (db == NULL) {
		fprintf(stderr, "odmrd-map: %s: %s\n", map.tmp, gdbm_strerror(gdbm_errno));
		fclose(in);
		return 2;
	}
	map.made = true;
	int errors = map_parse(in, src, db, tables ? &doms : NULL);
	fclose(in);
	if (errors == 0 && (map_protect(db, map.tmp, gid) != 0 || gdbm_sync(db) != 0)) {
		if (gdbm_errno)
			fprintf(stderr, "odmrd-map: %s: %s\n", map.tmp, gdbm_strerror(gdbm_errno));
		errors++;
	}
	gdbm_close(db);
	map_unique(&doms);
	if (errors == 0 && tables)
		errors += map_check_paths(cf, &doms);
	if (errors == 0 && cf->postfix_transport != NULL && map_postfix(cf, src, &doms, &tr_txt, &tr_db) != 0)
		errors++;
	if (errors == 0 && cf->sendmail_m4 != NULL && map_sendmail(cf, src, &doms, &m4) != 0)
		errors++;
	/* The MTA's routes first, then the grants: never a granted domain the MTA cannot reach. */
	if (errors == 0 && (map_commit(&tr_db) || map_commit(&tr_txt) || map_commit(&m4) || map_commit(&map)))
		errors++;
	for (size_t i = 0; i < doms.n; i++)
		free(doms.v[i]);
	free(doms.v);
	struct map_out *left[] = { &map, &tr_txt, &tr_db, &m4 };
	for (size_t i = 0; i < sizeof left / sizeof left[0]; i++)
		if (left[i]->made)
			unlink(left[i]->tmp);
	if (errors) {
		fprintf(stderr, "odmrd-map: %d error(s); %s not changed\n", errors, map.dst);
		return 2;
	}
	if (cf->postfix_transport != NULL && map_postfix_reload(cf) != 0)
		return 2;
	return 0;
}

/* Print USER's domains from SRC.db. */
static int map_query(const char *user, const char *src)
{
	char db[4096], why[512], buf[8192];
	struct dom_list l;

	snprintf(db, sizeof db, "%s.db", src);
	switch (dom_lookup(db, user, NULL, &l, why, sizeof why)) {
	case DOM_OK:
		printf("%s\n", dom_join(&l, buf, sizeof buf));
		dom_free(&l);
		return 0;
	case DOM_NOUSER:
		return 1;
	default:
		fprintf(stderr, "odmrd-map: %s\n", why);
		return 2;
	}
}

/* cf_report_fn: configuration problems go to the admin's terminal. */
static void map_cf_report(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "odmrd-map: %s\n", msg);
}

/* Build the map and the MTA tables from FILE, or (-q) print one user's domains. */
int main(int argc, char **argv)
{
	int opt, rc;
	const char *query = NULL, *cfpath = NULL, *group = NULL;
	struct config cf;

	while ((opt = getopt(argc, argv, "f:g:q:")) != -1) {
		switch (opt) {
		case 'f':
			cfpath = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'q':
			query = optarg;
			break;
		default:
			return map_usage();
		}
	}
	if (optind != argc - 1)
		return map_usage();
	/* No -f and no file at the default place: odmrd's defaults (a map, no MTA tables). */
	if (cfpath == NULL && access(CF_DEFAULT_PATH, F_OK) != 0)
		cf_defaults(&cf);
	else if (cf_parse(cfpath ? cfpath : CF_DEFAULT_PATH, &cf, map_cf_report, NULL) != 0) {
		cf_free(&cf);
		fprintf(stderr, "odmrd-map: fix the configuration first; nothing changed\n");
		return 2;
	}
	rc = query ? map_query(query, argv[optind]) : map_build(argv[optind], &cf, group);
	cf_free(&cf);
	return rc;
}
