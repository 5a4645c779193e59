/*
 * odmrd-map.c - build and query odmrd's customer map (GDBM).
 *
 *   odmrd-map FILE          read FILE (text) and replace FILE.db atomically
 *   odmrd-map -q USER FILE  print USER's domains from FILE.db; exit 0 found, 1 not found, 2 error
 *
 * Source format: one customer a line, "user  domain[, domain ...]" (commas and/or white space),
 * '#' starts a comment. Trusts the admin's file no more than the network: every domain is checked
 * with the same dom_valid() odmrd uses. Invariant: on any error nothing is written; a reader never
 * sees a half-built map (temporary file, fsync, rename).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domains.h"

#define MAP_USER_MAX 255

/* Report a usage error. */
static int map_usage(void)
{
	fprintf(stderr, "usage: odmrd-map FILE\n       odmrd-map -q USER FILE\n");
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

/* Parse the source into DB; returns the number of errors. */
static int map_parse(FILE *in, const char *src, GDBM_FILE db)
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
		dom_free(&l);
	}
	if (ferror(in)) {
		fprintf(stderr, "odmrd-map: %s: read error\n", src);
		errors++;
	}
	return errors;
}

/* fsync the directory holding PATH so the rename survives a crash. */
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

/* Build SRC.db from SRC through a temporary file and rename(2). */
static int map_build(const char *src)
{
	char dst[4096], tmp[4096];
	FILE *in = fopen(src, "re");

	if (in == NULL) {
		fprintf(stderr, "odmrd-map: %s: %s\n", src, strerror(errno));
		return 2;
	}
	snprintf(dst, sizeof dst, "%s.db", src);
	snprintf(tmp, sizeof tmp, "%s.db.tmp.%ld", src, (long)getpid());
	GDBM_FILE db = gdbm_open(tmp, 0, GDBM_NEWDB | GDBM_CLOEXEC, 0644, NULL);
	if (db == NULL) {
		fprintf(stderr, "odmrd-map: %s: %s\n", tmp, gdbm_strerror(gdbm_errno));
		fclose(in);
		return 2;
	}
	int errors = map_parse(in, src, db);
	fclose(in);
	if (errors == 0 && gdbm_sync(db) != 0) {
		fprintf(stderr, "odmrd-map: %s: %s\n", tmp, gdbm_strerror(gdbm_errno));
		errors++;
	}
	gdbm_close(db);
	if (errors == 0 && rename(tmp, dst) != 0) {
		fprintf(stderr, "odmrd-map: rename %s: %s\n", dst, strerror(errno));
		errors++;
	}
	if (errors) {
		unlink(tmp);
		fprintf(stderr, "odmrd-map: %d error(s); %s not changed\n", errors, dst);
		return 2;
	}
	map_sync_dir(dst);
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

int main(int argc, char **argv)
{
	int opt;
	const char *query = NULL;

	while ((opt = getopt(argc, argv, "q:")) != -1) {
		if (opt != 'q')
			return map_usage();
		query = optarg;
	}
	if (optind != argc - 1)
		return map_usage();
	return query ? map_query(query, argv[optind]) : map_build(argv[optind]);
}
