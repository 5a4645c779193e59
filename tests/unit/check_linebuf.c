/*
 * check_linebuf.c - the bounded CRLF line reader: complete and split lines, bare LF / bare CR / NUL,
 * the 512 (RFC 5321) and LB_SIZE (an AUTH line with RFC 4954's 12288-octet response) limits, early
 * TOO_LONG, lb_fill on a pipe, lb_pending / lb_peek / lb_consume, and the short count of lb_put on
 * a full buffer.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linebuf.h"
#include "unit.h"

static struct linebuf *lb;

static void lb_setup(void)
{
	lb = malloc(sizeof *lb);
	ck_assert_ptr_nonnull(lb);
	lb_init(lb);
}

static void lb_teardown(void)
{
	free(lb);
	lb = NULL;
}

/* Put all of S, which must fit. */
static void put(const char *s, size_t n)
{
	ck_assert_uint_eq(lb_put(lb, s, n), n);
}

/* A malloc'd run of N copies of C. */
static char *run_of(char c, size_t n)
{
	char *p = malloc(n + 1);
	ck_assert_ptr_nonnull(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

/* Expect the next line to be WANT. */
static void expect_line(size_t limit, const char *want)
{
	char *line = NULL;
	size_t len = 999999;

	ck_assert_int_eq(lb_get(lb, limit, &line, &len), LB_LINE);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_str_eq(line, want);
}

static enum lb_status get(size_t limit)
{
	char *line;
	size_t len;
	return lb_get(lb, limit, &line, &len);
}

START_TEST(test_crlf_lines)
{
	put("EHLO a.example\r\nQUIT\r\n\r\n", 24);
	expect_line(LB_CMD_LIMIT, "EHLO a.example");
	expect_line(LB_CMD_LIMIT, "QUIT");
	expect_line(LB_CMD_LIMIT, "");
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
	ck_assert_uint_eq(lb_pending(lb), 0);
}
END_TEST

START_TEST(test_empty_buffer_more)
{
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
	ck_assert_uint_eq(lb_pending(lb), 0);
}
END_TEST

START_TEST(test_one_byte_at_a_time)
{
	const char *msg = "AUTH CRAM-MD5\r\n";
	size_t n = strlen(msg);

	for (size_t i = 0; i < n; i++) {
		put(msg + i, 1);
		if (i + 1 < n)
			ck_assert_msg(get(LB_CMD_LIMIT) == LB_MORE, "line returned early at octet %zu", i);
	}
	expect_line(LB_CMD_LIMIT, "AUTH CRAM-MD5");
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
}
END_TEST

START_TEST(test_bare_lf)
{
	put("EHLO a\n", 7);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_LF);
	/* errors are sticky */
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_LF);
}
END_TEST

START_TEST(test_bare_lf_alone)
{
	put("\n", 1);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_LF);
}
END_TEST

START_TEST(test_bare_cr)
{
	put("EHLO a\rQUIT\r\n", 13);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_CR);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_CR);
}
END_TEST

START_TEST(test_cr_cr_lf)
{
	put("EHLO a\r\r\n", 9);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_CR);
}
END_TEST

START_TEST(test_nul)
{
	put("EH\0LO a\r\n", 9);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_NUL);
}
END_TEST

START_TEST(test_error_after_good_line)
{
	put("NOOP\r\nQUIT\n", 11);
	expect_line(LB_CMD_LIMIT, "NOOP");
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_BARE_LF);
}
END_TEST

START_TEST(test_limit_512_exact)
{
	char *a = run_of('a', 512);

	a[510] = '\r';
	a[511] = '\n';
	put(a, 512);
	char *line;
	size_t len;
	ck_assert_int_eq(lb_get(lb, LB_CMD_LIMIT, &line, &len), LB_LINE);
	ck_assert_uint_eq(len, 510);
	ck_assert_uint_eq(strlen(line), 510);
	free(a);
}
END_TEST

START_TEST(test_limit_513_refused)
{
	char *a = run_of('a', 513);

	a[511] = '\r';
	a[512] = '\n';
	put(a, 513);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_TOO_LONG);
	free(a);
}
END_TEST

START_TEST(test_too_long_without_crlf)
{
	char *a = run_of('a', 600);

	/* 510 octets and a CR could still become a 512-octet line */
	put(a, 510);
	put("\r", 1);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
	lb_init(lb);
	/* 512 octets with no CR cannot: refused before any CRLF arrives */
	put(a, 512);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_TOO_LONG);
	lb_init(lb);
	put(a, 600);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_TOO_LONG);
	free(a);
}
END_TEST

START_TEST(test_limit_lb_size_exact)
{
	char *a = run_of('x', LB_SIZE);

	a[LB_SIZE - 2] = '\r';
	a[LB_SIZE - 1] = '\n';
	put(a, LB_SIZE);
	char *line;
	size_t len;
	ck_assert_int_eq(lb_get(lb, LB_SIZE, &line, &len), LB_LINE);
	ck_assert_uint_eq(len, LB_SIZE - 2);
	ck_assert_uint_eq(lb_pending(lb), 0);
	free(a);
}
END_TEST

START_TEST(test_limit_lb_size_plus_one)
{
	char *a = run_of('x', LB_SIZE + 1);

	a[LB_SIZE - 1] = '\r';
	a[LB_SIZE] = '\n';
	/* only LB_SIZE octets fit; the reader must still say TOO_LONG, not MORE */
	ck_assert_uint_eq(lb_put(lb, a, LB_SIZE + 1), LB_SIZE);
	ck_assert_int_eq(get(LB_SIZE), LB_TOO_LONG);
	free(a);
}
END_TEST

START_TEST(test_limit_above_lb_size_clamped)
{
	char *a = run_of('x', LB_SIZE);

	ck_assert_uint_eq(lb_put(lb, a, LB_SIZE), LB_SIZE);
	ck_assert_int_eq(get(LB_SIZE * 4), LB_TOO_LONG);
	free(a);
}
END_TEST

START_TEST(test_fill_from_pipe)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "EHLO a\r\nQU", 10), 10);
	ck_assert_int_eq(lb_fill(lb, p[0]), 10);
	expect_line(LB_CMD_LIMIT, "EHLO a");
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
	ck_assert_int_eq(write(p[1], "IT\r\n", 4), 4);
	ck_assert_int_eq(lb_fill(lb, p[0]), 4);
	expect_line(LB_CMD_LIMIT, "QUIT");
	close(p[1]);
	ck_assert_int_eq(lb_fill(lb, p[0]), 0);
	close(p[0]);
}
END_TEST

START_TEST(test_fill_read_error)
{
	/* read(2) on a directory fails with EISDIR */
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lb_fill(lb, fd), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_uint_eq(lb_pending(lb), 0);
	close(fd);
}
END_TEST

START_TEST(test_fill_full_buffer)
{
	char *a = run_of('x', LB_SIZE);
	int p[2];

	put(a, LB_SIZE);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "y", 1), 1);
	ck_assert_int_eq(lb_fill(lb, p[0]), -2);
	close(p[0]);
	close(p[1]);
	free(a);
}
END_TEST

START_TEST(test_pending_peek_consume)
{
	put("EHLO a\r\nQUIT", 12);
	expect_line(LB_CMD_LIMIT, "EHLO a");
	ck_assert_uint_eq(lb_pending(lb), 4);
	ck_assert_int_eq(memcmp(lb_peek(lb), "QUIT", 4), 0);
	lb_consume(lb, 2);
	ck_assert_uint_eq(lb_pending(lb), 2);
	ck_assert_int_eq(memcmp(lb_peek(lb), "IT", 2), 0);
	lb_consume(lb, 100);  /* clamped */
	ck_assert_uint_eq(lb_pending(lb), 0);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
}
END_TEST

START_TEST(test_cr_at_end_then_lf)
{
	put("NOOP\r", 5);
	ck_assert_int_eq(get(LB_CMD_LIMIT), LB_MORE);
	put("\n", 1);
	expect_line(LB_CMD_LIMIT, "NOOP");
}
END_TEST

START_TEST(test_put_short_count)
{
	char *a = run_of('x', LB_SIZE);

	ck_assert_uint_eq(lb_put(lb, a, 12000), 12000);
	ck_assert_uint_eq(lb_put(lb, a, 500), LB_SIZE - 12000);
	ck_assert_uint_eq(lb_put(lb, a, 1), 0);
	ck_assert_uint_eq(lb_pending(lb), LB_SIZE);
	free(a);
}
END_TEST

START_TEST(test_space_reclaimed_after_lines)
{
	/* fill the buffer with 4-octet lines, take them all, then the whole buffer is free again */
	char *a = malloc(LB_SIZE);
	ck_assert_ptr_nonnull(a);
	for (size_t i = 0; i < LB_SIZE; i += 4)
		memcpy(a + i, "ab\r\n", 4);
	put(a, LB_SIZE);
	for (size_t i = 0; i < LB_SIZE / 4; i++)
		expect_line(LB_CMD_LIMIT, "ab");
	ck_assert_uint_eq(lb_pending(lb), 0);
	ck_assert_uint_eq(lb_put(lb, a, LB_SIZE), LB_SIZE);
	expect_line(LB_CMD_LIMIT, "ab");
	free(a);
}
END_TEST

Suite *linebuf_suite(void)
{
	Suite *s = suite_create("linebuf");
	TCase *tc = tcase_create("linebuf");

	tcase_add_checked_fixture(tc, lb_setup, lb_teardown);
	tcase_add_test(tc, test_crlf_lines);
	tcase_add_test(tc, test_empty_buffer_more);
	tcase_add_test(tc, test_one_byte_at_a_time);
	tcase_add_test(tc, test_bare_lf);
	tcase_add_test(tc, test_bare_lf_alone);
	tcase_add_test(tc, test_bare_cr);
	tcase_add_test(tc, test_cr_cr_lf);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_error_after_good_line);
	tcase_add_test(tc, test_limit_512_exact);
	tcase_add_test(tc, test_limit_513_refused);
	tcase_add_test(tc, test_too_long_without_crlf);
	tcase_add_test(tc, test_limit_lb_size_exact);
	tcase_add_test(tc, test_limit_lb_size_plus_one);
	tcase_add_test(tc, test_limit_above_lb_size_clamped);
	tcase_add_test(tc, test_fill_from_pipe);
	tcase_add_test(tc, test_fill_read_error);
	tcase_add_test(tc, test_fill_full_buffer);
	tcase_add_test(tc, test_pending_peek_consume);
	tcase_add_test(tc, test_cr_at_end_then_lf);
	tcase_add_test(tc, test_put_short_count);
	tcase_add_test(tc, test_space_reclaimed_after_lines);
	suite_add_tcase(s, tc);
	return s;
}
