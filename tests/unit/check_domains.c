/*
 * check_domains.c - RFC 2645 domain syntax (dom_valid), the ATRN argument (dom_parse_atrn: commas,
 * spaces, case folding, duplicates, the max_domains limit), map values (dom_parse_list), dom_contains,
 * dom_join's truncation, and dynlib_load (how dom_lookup opens libgdbm at first use).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "dynlib.h"
#include "unit.h"

static bool valid(const char *s)
{
	return dom_valid(s, strlen(s));
}

/* LABELS labels of length LEN each ('a'..), joined by dots; malloc'd. */
static char *name_of(size_t labels, size_t len)
{
	char *p = malloc(labels * (len + 1) + 1), *o = p;
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < labels; i++) {
		if (i)
			*o++ = '.';
		memset(o, (int)('a' + i % 26), len);
		o += len;
	}
	*o = '\0';
	return p;
}

START_TEST(test_valid_names)
{
	ck_assert(valid("example.com"));
	ck_assert(valid("a.b"));
	ck_assert(valid("mail.example.co.uk"));
	ck_assert(valid("123.example"));
	ck_assert(valid("0.1"));
	ck_assert(valid("a-b.example"));
	ck_assert(valid("a--b.ex-ample"));
	ck_assert(valid("EXAMPLE.Com"));
}
END_TEST

START_TEST(test_valid_63_label)
{
	char *l63 = name_of(1, 63), buf[128];

	snprintf(buf, sizeof buf, "%s.example", l63);
	ck_assert(valid(buf));
	snprintf(buf, sizeof buf, "example.%s", l63);
	ck_assert(valid(buf));
	free(l63);
}
END_TEST

START_TEST(test_valid_253_name)
{
	/* 63.63.63.61 = 253 octets */
	char *n = name_of(4, 63);
	n[253] = '\0';
	ck_assert_uint_eq(strlen(n), 253);
	ck_assert(valid(n));
	free(n);
}
END_TEST

START_TEST(test_invalid_lengths)
{
	char *l64 = name_of(1, 64), buf[160];

	snprintf(buf, sizeof buf, "%s.example", l64);
	ck_assert(!valid(buf));
	snprintf(buf, sizeof buf, "example.%s", l64);
	ck_assert(!valid(buf));
	free(l64);

	char *n = name_of(4, 63);  /* 255 octets */
	n[254] = '\0';
	ck_assert_uint_eq(strlen(n), 254);
	ck_assert(!valid(n));
	free(n);
	n = name_of(10, 40);
	ck_assert(!valid(n));
	free(n);
}
END_TEST

START_TEST(test_invalid_names)
{
	static const char *const bad[] = {
		"example", "a..com", "-a.com", "a-.com", "a.-com", "a.com-", "a_b.com", "a.com.", ".a.com",
		".", "..", ("b\xc3\xbc" "cher.example"), "a.com;rm -rf /", "", " ", "a .com", "a. com",
		"a.com ", "a,b.com", "a.c*m", "a/b.com", "[127.0.0.1]", "a.com\t",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!valid(bad[i]), "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_valid_honours_len)
{
	const char *s = "a.example.com";

	ck_assert(dom_valid(s, 9));    /* "a.example" */
	ck_assert(!dom_valid(s, 10));  /* "a.example." */
	ck_assert(!dom_valid(s, 1));
	ck_assert(!dom_valid("a.b\0c", 5));
	ck_assert(!dom_valid("a.com\x80", 6));
}
END_TEST

START_TEST(test_atrn_empty)
{
	struct dom_list l = { (char **)1, 99 };

	ck_assert_int_eq(dom_parse_atrn("", 32, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 0);
	dom_free(&l);
}
END_TEST

START_TEST(test_atrn_two)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn("a.example,b.example", 32, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0], "a.example");
	ck_assert_str_eq(l.v[1], "b.example");
	ck_assert(dom_contains(&l, "b.example"));
	ck_assert(!dom_contains(&l, "c.example"));
	dom_free(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.v);
}
END_TEST

START_TEST(test_atrn_case_folding)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn("Mail.EXAMPLE.Org", 32, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.v[0], "mail.example.org");
	dom_free(&l);
}
END_TEST

START_TEST(test_atrn_duplicates)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn("a.example,A.Example,b.example,a.example", 32, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0], "a.example");
	ck_assert_str_eq(l.v[1], "b.example");
	dom_free(&l);
	/* duplicates do not count against the limit */
	ck_assert_int_eq(dom_parse_atrn("a.example,a.example,a.example", 1, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 1);
	dom_free(&l);
}
END_TEST

START_TEST(test_atrn_space_after_comma)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn("a.example, b.example,  c.example", 32, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[1], "b.example");
	ck_assert_str_eq(l.v[2], "c.example");
	dom_free(&l);
}
END_TEST

START_TEST(test_atrn_syntax_errors)
{
	static const char *const bad[] = {
		"a.example ,b.example", "a.example,", "a.example, ", ",a.example", "a.example,,b.example",
		"a.example b.example", " a.example", "a.example ", "example", "a.example;b.example",
		",", " ", "a.example,-b.example", "a.example,b_c.example",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct dom_list l;
		ck_assert_msg(dom_parse_atrn(bad[i], 32, &l) == DOM_SYNTAX, "\"%s\" not a syntax error",
			      bad[i]);
		ck_assert_uint_eq(l.n, 0);
		ck_assert_ptr_null(l.v);
	}
}
END_TEST

START_TEST(test_atrn_too_many)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn("a.example,b.example,c.example", 2, &l), DOM_TOO_MANY);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.v);
	ck_assert_int_eq(dom_parse_atrn("a.example,b.example", 2, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 2);
	dom_free(&l);
}
END_TEST

/* "d0.example,d1.example,..." with N names; malloc'd. */
static char *many(size_t n)
{
	char *s = malloc(n * 16 + 1);
	size_t o = 0;
	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%sd%zu.example", i ? "," : "", i);
	return s;
}

START_TEST(test_atrn_1000)
{
	char *s = many(1000);
	struct dom_list l;

	ck_assert_int_eq(dom_parse_atrn(s, 1000, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 1000);
	ck_assert_str_eq(l.v[999], "d999.example");
	dom_free(&l);
	ck_assert_int_eq(dom_parse_atrn(s, 999, &l), DOM_TOO_MANY);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(dom_parse_atrn(s, 32, &l), DOM_TOO_MANY);
	free(s);
}
END_TEST

START_TEST(test_list_separators)
{
	const char *v = " a.example b.example,c.example\tD.Example , ,e.example,";
	struct dom_list l;

	ck_assert_int_eq(dom_parse_list(v, strlen(v), &l), DOM_OK);
	ck_assert_uint_eq(l.n, 5);
	ck_assert_str_eq(l.v[0], "a.example");
	ck_assert_str_eq(l.v[3], "d.example");
	ck_assert_str_eq(l.v[4], "e.example");
	dom_free(&l);
}
END_TEST

START_TEST(test_list_not_nul_terminated)
{
	const char v[] = { 'a', '.', 'e', 'x', ',', 'b', '.', 'e', 'x', 'Z', 'Z' };
	struct dom_list l;

	ck_assert_int_eq(dom_parse_list(v, 9, &l), DOM_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[1], "b.ex");
	dom_free(&l);
}
END_TEST

START_TEST(test_list_errors)
{
	struct dom_list l;

	ck_assert_int_eq(dom_parse_list("", 0, &l), DOM_SYNTAX);
	ck_assert_int_eq(dom_parse_list(" , ", 3, &l), DOM_SYNTAX);
	ck_assert_int_eq(dom_parse_list("a.example,bad_name.example", 26, &l), DOM_SYNTAX);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(dom_parse_list("a.example\0", 10, &l), DOM_SYNTAX);
	ck_assert_int_eq(dom_parse_list("single", 6, &l), DOM_SYNTAX);
}
END_TEST

static struct dom_list list_of(const char *csv)
{
	struct dom_list l;
	ck_assert_int_eq(dom_parse_atrn(csv, 100, &l), DOM_OK);
	return l;
}

START_TEST(test_join)
{
	struct dom_list l = list_of("aaa.example,bbb.example");
	char buf[64];

	ck_assert_str_eq(dom_join(&l, buf, sizeof buf), "aaa.example,bbb.example");
	/* exact fit: 23 octets and the NUL */
	char fit[24];
	ck_assert_str_eq(dom_join(&l, fit, sizeof fit), "aaa.example,bbb.example");
	dom_free(&l);
	l = list_of("");
	ck_assert_str_eq(dom_join(&l, buf, sizeof buf), "");
	dom_free(&l);
}
END_TEST

START_TEST(test_join_truncates)
{
	struct dom_list l = list_of("aaa.example,bbb.example");
	char buf[12];

	ck_assert_str_eq(dom_join(&l, buf, sizeof buf), "aaa.exam...");
	char small[23];
	const char *r = dom_join(&l, small, sizeof small);
	ck_assert_uint_eq(strlen(r), 22);
	ck_assert_str_eq(r + 19, "...");
	char tiny[5];
	r = dom_join(&l, tiny, sizeof tiny);
	ck_assert_uint_lt(strlen(r), sizeof tiny);
	dom_free(&l);
}
END_TEST

/* ---- dynlib: the libraries domains.c and mta_postfix.c open at first use ---- */

START_TEST(test_dynlib_resolves_once)
{
	static void *h;
	static __typeof__(strlen) *fn;
	const struct dynlib_sym syms[] = { { "strlen", (void **)&fn } };
	char err[256] = "";

	ck_assert_int_eq(dynlib_load("libc.so.6", &h, syms, 1, err, sizeof err), 0);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(fn("odmr"), 4);
	void *first = h;
	fn = NULL;
	/* already open: nothing is looked up again */
	ck_assert_int_eq(dynlib_load("libc.so.6", &h, syms, 1, err, sizeof err), 0);
	ck_assert_ptr_eq(h, first);
	ck_assert_ptr_null(fn);
}
END_TEST

START_TEST(test_dynlib_failures)
{
	void *h = NULL;
	void *fn = NULL;
	const struct dynlib_sym syms[] = { { "odmrd_no_such_symbol", &fn } };
	char err[256] = "";

	ck_assert_int_eq(dynlib_load("libodmrd-no-such.so.0", &h, syms, 1, err, sizeof err), -1);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(err, "libodmrd-no-such.so.0"));
	ck_assert_int_eq(dynlib_load("libc.so.6", &h, syms, 1, err, sizeof err), -1);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(err, "no symbol odmrd_no_such_symbol"));
}
END_TEST

Suite *domains_suite(void)
{
	Suite *s = suite_create("domains");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, test_valid_names);
	tcase_add_test(tc, test_valid_63_label);
	tcase_add_test(tc, test_valid_253_name);
	tcase_add_test(tc, test_invalid_lengths);
	tcase_add_test(tc, test_invalid_names);
	tcase_add_test(tc, test_valid_honours_len);
	suite_add_tcase(s, tc);

	tc = tcase_create("atrn");
	tcase_add_test(tc, test_atrn_empty);
	tcase_add_test(tc, test_atrn_two);
	tcase_add_test(tc, test_atrn_case_folding);
	tcase_add_test(tc, test_atrn_duplicates);
	tcase_add_test(tc, test_atrn_space_after_comma);
	tcase_add_test(tc, test_atrn_syntax_errors);
	tcase_add_test(tc, test_atrn_too_many);
	tcase_add_test(tc, test_atrn_1000);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_test(tc, test_list_separators);
	tcase_add_test(tc, test_list_not_nul_terminated);
	tcase_add_test(tc, test_list_errors);
	tcase_add_test(tc, test_join);
	tcase_add_test(tc, test_join_truncates);
	suite_add_tcase(s, tc);

	tc = tcase_create("dynlib");
	tcase_add_test(tc, test_dynlib_resolves_once);
	tcase_add_test(tc, test_dynlib_failures);
	suite_add_tcase(s, tc);
	return s;
}
