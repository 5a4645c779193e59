/*
 * check_main.c - runs every odmrd unit suite in one SRunner. Fails if any test failed, and also if
 * no test ran at all (a mistyped CK_RUN_SUITE / CK_RUN_CASE makes Check run 0 tests and exit 0).
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "unit.h"

/* nftw callback: remove everything below the temp root, children first. */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int main(void)
{
	/* One temp root for every test file; removed at the end even when a failed test skipped its
	 * teardown (Check does not run checked teardowns after a failure in fork mode). */
	char root[] = "/tmp/odmrd-unit-XXXXXX";
	if (mkdtemp(root) == NULL || setenv(UNIT_TMP_ENV, root, 1) != 0) {
		perror("check_odmrd: temp directory");
		return EXIT_FAILURE;
	}
	SRunner *sr = srunner_create(linebuf_suite());

	srunner_add_suite(sr, domains_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, map_suite());
	srunner_add_suite(sr, session_suite());
	srunner_add_suite(sr, relay_suite());
	srunner_add_suite(sr, mta_suite());
	/* Keep the core's log lines out of the host's syslog. */
	if (log_open(LOG_MAIL, "/dev/null") != 0) {
		fprintf(stderr, "check_odmrd: cannot open /dev/null for logging\n");
		srunner_free(sr);
		nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		return EXIT_FAILURE;
	}
	srunner_run_all(sr, CK_NORMAL);
	int run = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	log_close();
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (run == 0) {
		fprintf(stderr, "check_odmrd: no tests ran (check CK_RUN_SUITE / CK_RUN_CASE)\n");
		return EXIT_FAILURE;
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
