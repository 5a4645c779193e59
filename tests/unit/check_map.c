/*
 * check_map.c - dom_lookup on real GDBM files built with the GDBM API in a temp directory: present
 * and absent users, the realm fallback, and every DOM_TEMP cause (missing file, a writer holding the
 * lock in this process and in another process, random bytes, truncation, empty file, bad values).
 * Also holds the temp-dir and map-building helpers the session tests share.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domains.h"
#include "unit.h"

const char *unit_tmproot(void)
{
	const char *r = getenv(UNIT_TMP_ENV);
	return r && *r ? r : "/tmp";
}

char *unit_tmpdir(void)
{
	char *d = malloc(4096);

	ck_assert_ptr_nonnull(d);
	snprintf(d, 4096, "%s/odmrd-unit-XXXXXX", unit_tmproot());
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

void unit_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (unlink(p) != 0)
			rmdir(p);
	}
	closedir(d);
	rmdir(dir);
}

int unit_make_map(const char *path, const char *const *kv)
{
	GDBM_FILE db = gdbm_open(path, 0, GDBM_NEWDB, 0600, NULL);

	if (db == NULL)
		return -1;
	for (; kv[0] != NULL; kv += 2) {
		datum k = { .dptr = (char *)kv[0], .dsize = (int)strlen(kv[0]) };
		datum v = { .dptr = (char *)kv[1], .dsize = (int)strlen(kv[1]) };
		if (gdbm_store(db, k, v, GDBM_REPLACE) != 0) {
			gdbm_close(db);
			return -1;
		}
	}
	return gdbm_close(db) == 0 ? 0 : -1;
}

static char *dir;
static char map[4096];
static struct dom_list out;
static char why[512];

static const char *const std_map[] = {
	"alice@example.net", "a.example B.Example,c.example",
	"bob", "bob.example",
	"carol@example.net", "carol-full.example",
	"carol", "carol-local.example",
	NULL,
};

static void map_setup(void)
{
	dir = unit_tmpdir();
	snprintf(map, sizeof map, "%s/customers.db", dir);
	ck_assert_int_eq(unit_make_map(map, std_map), 0);
	out.v = NULL;
	out.n = 0;
	why[0] = '\0';
}

static void map_teardown(void)
{
	dom_free(&out);
	unit_rmtree(dir);
	free(dir);
	dir = NULL;
}

static enum dom_rc lookup(const char *user, const char *realm)
{
	dom_free(&out);
	why[0] = '\0';
	return dom_lookup(map, user, realm, &out, why, sizeof why);
}

/* Expect DOM_TEMP with a reason naming the map. */
static void expect_temp(const char *user, const char *realm)
{
	ck_assert_int_eq(lookup(user, realm), DOM_TEMP);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_msg(strstr(why, map) != NULL, "reason \"%s\" does not name the map", why);
}

START_TEST(test_present_user)
{
	ck_assert_int_eq(lookup("alice@example.net", ""), DOM_OK);
	ck_assert_uint_eq(out.n, 3);
	ck_assert_str_eq(out.v[0], "a.example");
	ck_assert_str_eq(out.v[1], "b.example");
	ck_assert_str_eq(out.v[2], "c.example");
}
END_TEST

START_TEST(test_absent_user)
{
	ck_assert_int_eq(lookup("mallory@example.net", ""), DOM_NOUSER);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_int_eq(lookup("", "example.net"), DOM_NOUSER);
	/* keys are exact: no case folding of user names */
	ck_assert_int_eq(lookup("Alice@example.net", ""), DOM_NOUSER);
}
END_TEST

START_TEST(test_realm_fallback)
{
	ck_assert_int_eq(lookup("bob@example.net", "example.net"), DOM_OK);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_str_eq(out.v[0], "bob.example");
	ck_assert_int_eq(lookup("bob@example.net", "EXAMPLE.NET"), DOM_OK);
	ck_assert_int_eq(lookup("bob", "example.net"), DOM_OK);
}
END_TEST

START_TEST(test_no_fallback_other_realm)
{
	ck_assert_int_eq(lookup("bob@example.org", "example.net"), DOM_NOUSER);
	ck_assert_int_eq(lookup("bob@example.net", ""), DOM_NOUSER);
	ck_assert_int_eq(lookup("bob@example.net", NULL), DOM_NOUSER);
	ck_assert_int_eq(lookup("bob@sub.example.net", "example.net"), DOM_NOUSER);
}
END_TEST

START_TEST(test_full_key_preferred)
{
	ck_assert_int_eq(lookup("carol@example.net", "example.net"), DOM_OK);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_str_eq(out.v[0], "carol-full.example");
}
END_TEST

START_TEST(test_missing_file)
{
	snprintf(map, sizeof map, "%s/nonexistent.db", dir);
	expect_temp("alice@example.net", "");
	/* the reader must not create it */
	ck_assert_int_ne(access(map, F_OK), 0);
}
END_TEST

START_TEST(test_directory_as_map)
{
	snprintf(map, sizeof map, "%s", dir);
	expect_temp("alice@example.net", "");
}
END_TEST

START_TEST(test_locked_by_writer_same_process)
{
	GDBM_FILE w = gdbm_open(map, 0, GDBM_WRITER, 0600, NULL);

	ck_assert_ptr_nonnull(w);
	expect_temp("alice@example.net", "");
	gdbm_close(w);
	ck_assert_int_eq(lookup("alice@example.net", ""), DOM_OK);
}
END_TEST

START_TEST(test_locked_by_writer_other_process)
{
	int ready[2], go[2];
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		GDBM_FILE w = gdbm_open(map, 0, GDBM_WRCREAT, 0600, NULL);
		c = w ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		if (read(go[0], &c, 1) < 0)
			_exit(2);
		if (w)
			gdbm_close(w);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	enum dom_rc rc = lookup("alice@example.net", "");
	ck_assert_int_eq(write(go[1], "x", 1), 1);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(ready[0]);
	close(go[1]);
	ck_assert_int_eq(rc, DOM_TEMP);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(lookup("alice@example.net", ""), DOM_OK);
}
END_TEST

static void overwrite(const void *data, size_t n)
{
	int fd = open(map, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

START_TEST(test_corrupt_random)
{
	unsigned char junk[8192];
	unsigned x = 12345;

	for (size_t i = 0; i < sizeof junk; i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (unsigned char)(x >> 16);
	}
	overwrite(junk, sizeof junk);
	expect_temp("alice@example.net", "");
}
END_TEST

START_TEST(test_corrupt_truncated)
{
	struct stat sb;

	ck_assert_int_eq(stat(map, &sb), 0);
	ck_assert_int_gt(sb.st_size, 64);
	ck_assert_int_eq(truncate(map, sb.st_size / 2), 0);
	expect_temp("alice@example.net", "");
	ck_assert_int_eq(truncate(map, 100), 0);
	expect_temp("alice@example.net", "");
}
END_TEST

START_TEST(test_corrupt_empty_file)
{
	overwrite("", 0);
	expect_temp("alice@example.net", "");
}
END_TEST

START_TEST(test_bad_value)
{
	static const char *const bad[] = {
		"alice", "a.example,bad_domain.example",
		"bob", "",
		"carol", "single-label",
		"dave", "a.example;rm -rf /",
		NULL,
	};
	ck_assert_int_eq(unit_make_map(map, bad), 0);
	expect_temp("alice", "");
	ck_assert_msg(strstr(why, "bad value") != NULL, "reason: %s", why);
	expect_temp("bob", "");
	expect_temp("carol", "");
	expect_temp("dave", "");
}
END_TEST

START_TEST(test_value_with_nul)
{
	GDBM_FILE w = gdbm_open(map, 0, GDBM_WRITER, 0600, NULL);
	ck_assert_ptr_nonnull(w);
	datum k = { .dptr = "erin", .dsize = 4 };
	datum v = { .dptr = "a.example\0", .dsize = 10 };
	ck_assert_int_eq(gdbm_store(w, k, v, GDBM_REPLACE), 0);
	gdbm_close(w);
	expect_temp("erin", "");
}
END_TEST

Suite *map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("map");

	tcase_add_checked_fixture(tc, map_setup, map_teardown);
	tcase_add_test(tc, test_present_user);
	tcase_add_test(tc, test_absent_user);
	tcase_add_test(tc, test_realm_fallback);
	tcase_add_test(tc, test_no_fallback_other_realm);
	tcase_add_test(tc, test_full_key_preferred);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory_as_map);
	tcase_add_test(tc, test_locked_by_writer_same_process);
	tcase_add_test(tc, test_locked_by_writer_other_process);
	tcase_add_test(tc, test_corrupt_random);
	tcase_add_test(tc, test_corrupt_truncated);
	tcase_add_test(tc, test_corrupt_empty_file);
	tcase_add_test(tc, test_bad_value);
	tcase_add_test(tc, test_value_with_nul);
	suite_add_tcase(s, tc);
	return s;
}
