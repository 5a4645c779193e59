/*
 * check_session.c - the RFC 2645 protocol core driven through a fake session_io (output captured,
 * pauses recorded, settable "pending" flag and write failure) with the scriptable fake auth and
 * handoff: greeting (220/554/421), EHLO, every AUTH path (504 allow-list, base64, 334 exchanges,
 * cancel, 535 + delay, 454, 501, failure limit, success data), every ATRN outcome (530, 501, 450,
 * 451, 453, 250 + handoff, data after ATRN), pipelining, QUIT/NOOP/RSET/502, line errors and limits,
 * the soft/hard error limits, timeouts and write failure.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "handoff.h"
#include "linebuf.h"
#include "log.h"
#include "session.h"
#include "unit.h"

#define HOST "odmr.example.net"
#define EHLO_REPLY "250-" HOST "\r\n250-AUTH CRAM-MD5 PLAIN\r\n250 ATRN\r\n"
#define HOST_421_JUNK "421 " HOST " Too many commands without progress, closing connection\r\n"
/* base64("\0alice\0secret") */
#define PLAIN_IR "AGFsaWNlAHNlY3JldA=="

/* ---- the fake I/O ---- */
struct test_io {
	char *buf;
	size_t len, cap, seen;
	unsigned pauses[512];
	size_t npauses;
	int pending;
	int fail_write;
	unsigned writes;
};

static struct test_io tio;

static int tio_write(void *ctx, const char *buf, size_t len)
{
	struct test_io *t = ctx;

	t->writes++;
	if (t->fail_write)
		return -1;
	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->len + len + 1) * 2;
		char *n = realloc(t->buf, cap);
		if (n == NULL)
			return -1;
		t->buf = n;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, buf, len);
	t->len += len;
	t->buf[t->len] = '\0';
	return 0;
}

static void tio_pause(void *ctx, unsigned ms)
{
	struct test_io *t = ctx;

	if (t->npauses < sizeof t->pauses / sizeof t->pauses[0])
		t->pauses[t->npauses] = ms;
	t->npauses++;
}

static int tio_pending(void *ctx)
{
	return ((struct test_io *)ctx)->pending;
}

static const struct session_io io = { &tio, tio_write, tio_pause, tio_pending, NULL };

/* STARTTLS's preparation: counted, fails when tls_prepare_rc says so. */
static unsigned tls_prepares;
static int tls_prepare_rc;

static int tio_tls_prepare(void *ctx)
{
	(void)ctx;
	tls_prepares++;
	return tls_prepare_rc;
}

static const struct session_io io_tls = { &tio, tio_write, tio_pause, tio_pending, tio_tls_prepare };

/* ---- fixture ---- */
static struct config cf;
static struct session *s;
static char *dir;
static char map[4096];
static enum sess_action act;

static const char *const cust_map[] = {
	"alice@example.net", "a.example,b.example,c.example",
	"bob@example.net", "b.example",
	NULL,
};

static void new_session(struct auth *a)
{
	if (s)
		session_free(s);
	s = session_new(&cf, &io, a, "192.0.2.7");
	ck_assert_ptr_nonnull(s);
}

static void sess_setup(void)
{
	char err[64];

	fake_auth_init();
	fake_handoff_init();
	free(tio.buf);
	memset(&tio, 0, sizeof tio);
	dir = unit_tmpdir();
	snprintf(map, sizeof map, "%s/customers.db", dir);
	ck_assert_int_eq(unit_make_map(map, cust_map), 0);
	cf_defaults(&cf);
	cf.hostname = strdup(HOST);
	free(cf.customer_map);
	cf.customer_map = strdup(map);
	cf.max_auth_failures = 3;
	cf.soft_error_limit = 3;
	cf.hard_error_limit = 10;
	cf.error_delay_ms = 111;
	cf.auth_fail_delay_ms = 222;
	cf.greet_pause_ms = 0;
	cf.max_domains = 4;
	s = NULL;
	new_session(auth_open(&cf, NULL, NULL, err, sizeof err));
	act = SA_CONTINUE;
}

static void sess_teardown(void)
{
	session_free(s);
	s = NULL;
	cf_free(&cf);
	unit_rmtree(dir);
	free(dir);
	dir = NULL;
	free(tio.buf);
	memset(&tio, 0, sizeof tio);
}

/* ---- helpers ---- */

/* Output written since the last call. */
static const char *out_new(void)
{
	const char *p = tio.buf ? tio.buf + tio.seen : "";
	tio.seen = tio.len;
	return p;
}

/* Feed N octets; the action lands in act; returns the new output. */
static const char *feedn(const char *b, size_t n)
{
	act = session_input(s, b, n);
	return out_new();
}

static const char *feed(const char *str)
{
	return feedn(str, strlen(str));
}

/* Assert OUT is exactly one reply line with CODE (e.g. "250 "). */
#define expect1(out, code) do { \
	const char *o_ = (out); \
	ck_assert_msg(strncmp(o_, code, strlen(code)) == 0, "expected %s..., got \"%s\"", code, o_); \
	const char *e_ = strstr(o_, "\r\n"); \
	ck_assert_msg(e_ != NULL && e_[2] == '\0', "not one CRLF line: \"%s\"", o_); \
} while (0)

static unsigned pauses_of(unsigned ms)
{
	unsigned n = 0;
	for (size_t i = 0; i < tio.npauses && i < sizeof tio.pauses / sizeof tio.pauses[0]; i++)
		n += tio.pauses[i] == ms;
	return n;
}

/* The reply after the first line of OUT (e.g. the 421 after a 535). */
static const char *second_line(const char *o)
{
	const char *e = strstr(o, "\r\n");
	ck_assert_msg(e != NULL, "no CRLF in \"%s\"", o);
	return e + 2;
}

static void script(size_t i, enum auth_rc rc, const char *outdata, unsigned outlen)
{
	fake_auth.seq[i].rc = rc;
	fake_auth.seq[i].out = outdata;
	fake_auth.seq[i].outlen = outlen;
	if (fake_auth.nseq < i + 1)
		fake_auth.nseq = i + 1;
}

static void start(void)
{
	ck_assert_int_eq(session_start(s, NULL), SA_CONTINUE);
	expect1(out_new(), "220 ");
}

static void ehlo(void)
{
	start();
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	ck_assert_int_eq(act, SA_CONTINUE);
}

/* EHLO and a one-step AUTH PLAIN that succeeds. */
static void login(void)
{
	ehlo();
	script(fake_auth.nseq, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "235 ");
	ck_assert_int_eq(act, SA_CONTINUE);
}

/* base64 of N octets into OUT (room for it and a NUL), by the test-side codec (fake_base64.c). */
static void b64(const unsigned char *in, size_t n, char *out)
{
	unsigned len;
	ck_assert_int_eq(auth_encode64((const char *)in, (unsigned)n, out, (unsigned)((n + 2) / 3 * 4 + 1), &len), 0);
}

/* ---- greeting ---- */

START_TEST(test_greeting_220)
{
	ck_assert_int_eq(session_start(s, NULL), SA_CONTINUE);
	const char *o = out_new();
	expect1(o, "220 " HOST " ");
	ck_assert_uint_eq(tio.npauses, 0);
}
END_TEST

START_TEST(test_greeting_pause_then_220)
{
	cf.greet_pause_ms = 345;
	start();
	ck_assert_uint_eq(pauses_of(345), 1);
}
END_TEST

START_TEST(test_greeting_554_when_pending)
{
	cf.greet_pause_ms = 345;
	tio.pending = 1;
	ck_assert_int_eq(session_start(s, NULL), SA_CLOSE);
	expect1(out_new(), "554 ");
}
END_TEST

START_TEST(test_greeting_421_startup_err)
{
	ck_assert_int_eq(session_start(s, "cannot read config"), SA_CLOSE);
	const char *o = out_new();
	expect1(o, "421 ");
	/* the reason is for the log, not the client */
	ck_assert_ptr_null(strstr(o, "config"));
}
END_TEST

/* ---- EHLO ---- */

START_TEST(test_ehlo_multiline)
{
	start();
	const char *o = feed("EHLO client.example\r\n");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_str_eq(o, EHLO_REPLY);
	ck_assert_ptr_null(strstr(o, "250\r\n"));
}
END_TEST

START_TEST(test_ehlo_address_literal)
{
	start();
	ck_assert_str_eq(feed("ehlo [192.0.2.1]\r\n"), EHLO_REPLY);
}
END_TEST

START_TEST(test_ehlo_without_argument)
{
	start();
	expect1(feed("EHLO\r\n"), "501 ");
	expect1(feed("EHLO \r\n"), "501 ");
	expect1(feed("EHLO a;b\r\n"), "501 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	/* still in the initial state: AUTH needs EHLO */
	expect1(feed("AUTH PLAIN\r\n"), "503 ");
}
END_TEST

START_TEST(test_ehlo_without_auth_module)
{
	new_session(NULL);
	start();
	ck_assert_str_eq(feed("EHLO client.example\r\n"), "250-" HOST "\r\n250 ATRN\r\n");
	expect1(feed("AUTH PLAIN\r\n"), "454 ");
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

/* SASL is set up at the first EHLO, not before the greeting: a silent connection never pays. */
START_TEST(test_ehlo_readies_sasl_once)
{
	start();
	ck_assert_uint_eq(fake_auth.n_ready, 0);
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	ck_assert_uint_eq(fake_auth.n_ready, 1);
	ck_assert_str_eq(feed("EHLO again.example\r\n"), EHLO_REPLY);
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

/* A SASL set-up failure answers EHLO with 421 and closes; the reason goes to the log only. */
START_TEST(test_ehlo_sasl_unusable_421)
{
	fake_auth.ready_err = "no usable SASL mechanism";
	start();
	const char *o = feed("EHLO client.example\r\n");
	expect1(o, "421 " HOST " ");
	ck_assert_ptr_null(strstr(o, "SASL"));
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_ehlo_after_auth_503)
{
	login();
	expect1(feed("EHLO again.example\r\n"), "503 ");
}
END_TEST

/* ---- AUTH ---- */

START_TEST(test_auth_before_ehlo)
{
	start();
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "503 ");
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_auth_unadvertised_504)
{
	static const char *const bad[] = {
		"AUTH FOO\r\n", "AUTH LOGIN\r\n", "AUTH ANONYMOUS\r\n", "AUTH CRAM\r\n",
		"AUTH CRAM-MD5X\r\n", "AUTH CRAM-MD5,PLAIN\r\n", "AUTH \x01\x02\x7f\r\n",
		"AUTH PLAIN\tx\r\n",
	};
	cf.hard_error_limit = 100;
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *o = feed(bad[i]);
		ck_assert_msg(strncmp(o, "504 ", 4) == 0, "%zu: got \"%s\"", i, o);
		ck_assert_int_eq(act, SA_CONTINUE);
	}
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_auth_200_char_mech_504)
{
	char line[256] = "AUTH ";
	memset(line + 5, 'A', 200);
	strcpy(line + 205, "\r\n");
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	expect1(feed(line), "504 ");
	/* a 21-character name is one too long, whatever follows */
	expect1(feed("AUTH CRAM-MD5CRAM-MD5X =\r\n"), "504 ");
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_auth_no_mechanism_501)
{
	ehlo();
	expect1(feed("AUTH\r\n"), "501 ");
	expect1(feed("AUTH \r\n"), "501 ");
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_auth_mech_case_insensitive)
{
	ehlo();
	script(0, AUTH_CONTINUE, NULL, 0);
	expect1(feed("AUTH cram-md5\r\n"), "334 ");
	ck_assert_str_eq(fake_auth.mech, "CRAM-MD5");
	ck_assert_int_eq(fake_auth.in_null, 1);
}
END_TEST

START_TEST(test_auth_invalid_base64_ir_501)
{
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN !!!!\r\n"), "501 ");
	expect1(feed("AUTH PLAIN abc\r\n"), "501 ");
	expect1(feed("AUTH PLAIN \r\n"), "501 ");
	expect1(feed("AUTH PLAIN AGFs aWNl\r\n"), "501 ");
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_auth_ir_equals_is_empty)
{
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "235 ");
	ck_assert_uint_eq(fake_auth.n_start, 1);
	ck_assert_int_eq(fake_auth.in_null, 0);
	ck_assert_uint_eq(fake_auth.inlen, 0);
}
END_TEST

START_TEST(test_auth_ir_decoded)
{
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "235 ");
	ck_assert_str_eq(fake_auth.mech, "PLAIN");
	ck_assert_uint_eq(fake_auth.inlen, 13);
	ck_assert_int_eq(memcmp(fake_auth.in, "\0alice\0secret", 13), 0);
}
END_TEST

START_TEST(test_auth_continue_exchange)
{
	ehlo();
	script(0, AUTH_CONTINUE, "hello", 5);
	script(1, AUTH_OK, NULL, 0);
	ck_assert_str_eq(feed("AUTH CRAM-MD5\r\n"), "334 aGVsbG8=\r\n");
	ck_assert_int_eq(fake_auth.in_null, 1);
	expect1(feed("d29ybGQ=\r\n"), "235 ");
	ck_assert_uint_eq(fake_auth.n_step, 1);
	ck_assert_uint_eq(fake_auth.inlen, 5);
	ck_assert_str_eq(fake_auth.in, "world");
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

START_TEST(test_auth_empty_challenge)
{
	ehlo();
	script(0, AUTH_CONTINUE, NULL, 0);
	script(1, AUTH_OK, NULL, 0);
	ck_assert_str_eq(feed("AUTH PLAIN\r\n"), "334 \r\n");
	expect1(feed(PLAIN_IR "\r\n"), "235 ");
	ck_assert_uint_eq(fake_auth.inlen, 13);
}
END_TEST

START_TEST(test_auth_long_challenge)
{
	/* a 3000-octet challenge is a 4000-character 334 line: well inside RFC 4954's 12288 */
	static unsigned char chal[3000];
	static char want[4100], line[4200];
	for (size_t i = 0; i < sizeof chal; i++)
		chal[i] = (unsigned char)(i * 7 + 3);
	b64(chal, sizeof chal, want);
	snprintf(line, sizeof line, "334 %s\r\n", want);
	ehlo();
	script(0, AUTH_CONTINUE, (const char *)chal, sizeof chal);
	const char *o = feed("AUTH CRAM-MD5\r\n");
	ck_assert_msg(strcmp(o, line) == 0, "334 line is %zu octets, want %zu", strlen(o), strlen(line));
}
END_TEST

START_TEST(test_auth_long_response)
{
	/* a 12288-octet response line (12000 base64 characters) reaches the mechanism */
	static unsigned char resp[9000];
	static char line[12100];
	for (size_t i = 0; i < sizeof resp; i++)
		resp[i] = (unsigned char)(i * 13);
	ehlo();
	script(0, AUTH_CONTINUE, "x", 1);
	script(1, AUTH_OK, NULL, 0);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	b64(resp, sizeof resp, line);
	strcat(line, "\r\n");
	expect1(feed(line), "235 ");
	ck_assert_uint_eq(fake_auth.inlen, sizeof resp);
	ck_assert_int_eq(memcmp(fake_auth.in, resp, sizeof resp), 0);
}
END_TEST

START_TEST(test_auth_cancel)
{
	ehlo();
	script(0, AUTH_CONTINUE, "hello", 5);
	script(1, AUTH_OK, NULL, 0);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	expect1(feed("*\r\n"), "501 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_auth.n_reset, 1);
	ck_assert_uint_eq(fake_auth.n_step, 0);
	/* back in the ready state: a new AUTH starts afresh */
	expect1(feed("AUTH PLAIN =\r\n"), "235 ");
	ck_assert_uint_eq(fake_auth.n_start, 2);
}
END_TEST

START_TEST(test_auth_bad_base64_response)
{
	ehlo();
	script(0, AUTH_CONTINUE, "hello", 5);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	expect1(feed("not base64!\r\n"), "501 ");
	ck_assert_uint_eq(fake_auth.n_step, 0);
	ck_assert_uint_eq(fake_auth.n_reset, 1);
	expect1(feed("ATRN\r\n"), "530 ");
}
END_TEST

START_TEST(test_auth_wrong_credentials)
{
	ehlo();
	script(0, AUTH_FAIL, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "535 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(pauses_of(222), 1);
	ck_assert_uint_eq(fake_auth.n_reset, 1);
	expect1(feed("ATRN\r\n"), "530 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_auth_wrong_credentials_after_step)
{
	ehlo();
	script(0, AUTH_CONTINUE, "hello", 5);
	script(1, AUTH_FAIL, NULL, 0);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	expect1(feed("d29ybGQ=\r\n"), "535 ");
	ck_assert_uint_eq(pauses_of(222), 1);
	ck_assert_uint_eq(fake_auth.n_reset, 1);
}
END_TEST

START_TEST(test_auth_temp_454)
{
	ehlo();
	for (size_t i = 0; i < 4; i++)
		script(i, AUTH_TEMP, NULL, 0);
	/* backend trouble is not the client's failure: no 535 delay, no failure limit */
	for (int i = 0; i < 4; i++) {
		expect1(feed("AUTH PLAIN =\r\n"), "454 ");
		ck_assert_int_eq(act, SA_CONTINUE);
	}
	ck_assert_uint_eq(pauses_of(222), 0);
	ck_assert_uint_eq(fake_auth.n_reset, 4);
}
END_TEST

START_TEST(test_auth_syntax_501)
{
	ehlo();
	script(0, AUTH_SYNTAX, NULL, 0);
	expect1(feed("AUTH CRAM-MD5 =\r\n"), "501 ");
	ck_assert_uint_eq(fake_auth.n_reset, 1);
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

START_TEST(test_auth_backend_nomech_504)
{
	ehlo();
	script(0, AUTH_NOMECH, NULL, 0);
	expect1(feed("AUTH CRAM-MD5\r\n"), "504 ");
	ck_assert_uint_eq(fake_auth.n_start, 1);
}
END_TEST

START_TEST(test_auth_user_unknown_454)
{
	ehlo();
	fake_auth.user = NULL;
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "454 ");
	expect1(feed("ATRN\r\n"), "530 ");
}
END_TEST

START_TEST(test_auth_max_failures)
{
	ehlo();
	for (size_t i = 0; i < 3; i++)
		script(i, AUTH_FAIL, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "535 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	expect1(feed("AUTH PLAIN =\r\n"), "535 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	const char *o = feed("AUTH PLAIN =\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_msg(strncmp(o, "535 ", 4) == 0, "got \"%s\"", o);
	expect1(second_line(o), "421 ");
	ck_assert_uint_eq(pauses_of(222), 3);
}
END_TEST

START_TEST(test_auth_reset_failure_421)
{
	ehlo();
	script(0, AUTH_FAIL, NULL, 0);
	fake_auth.reset_rc = AUTH_TEMP;
	const char *o = feed("AUTH PLAIN =\r\n");
	ck_assert_msg(strncmp(o, "535 ", 4) == 0, "got \"%s\"", o);
	expect1(second_line(o), "421 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_auth_twice_503)
{
	login();
	script(fake_auth.nseq, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "503 ");
	ck_assert_uint_eq(fake_auth.n_start, 1);
}
END_TEST

START_TEST(test_auth_success_data)
{
	ehlo();
	script(0, AUTH_OK, "done", 4);
	ck_assert_str_eq(feed("AUTH PLAIN =\r\n"), "334 ZG9uZQ==\r\n");
	expect1(feed("ATRN\r\n"), "535 ");  /* anything but the empty line fails */
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
	script(1, AUTH_OK, "done", 4);
	ck_assert_str_eq(feed("AUTH PLAIN =\r\n"), "334 ZG9uZQ==\r\n");
	expect1(feed("\r\n"), "235 ");
	ck_assert_uint_eq(fake_auth.n_step, 0);
	expect1(feed("ATRN\r\n"), "250 ");
	ck_assert_int_eq(act, SA_HANDOFF);
}
END_TEST

/*
 * Every way out of an AUTH exchange (sess_enter_state) gives a fresh SASL context exactly once,
 * and when that fresh context cannot be made, a failed exchange ends the session with 421.
 */
START_TEST(test_auth_every_exit_resets_sasl)
{
	static const struct {
		const char *name;
		enum auth_rc rc0, rc1;     /* answers to auth_start and the first auth_step */
		const char *lines[2];      /* what the client sends */
		const char *want;          /* the last reply */
	} paths[] = {
		{ "235 at once", AUTH_OK, 0, { "AUTH PLAIN " PLAIN_IR "\r\n" }, "235 " },
		{ "235 after a 334", AUTH_CONTINUE, AUTH_OK, { "AUTH CRAM-MD5\r\n", "d29ybGQ=\r\n" }, "235 " },
		{ "535 at once", AUTH_FAIL, 0, { "AUTH PLAIN " PLAIN_IR "\r\n" }, "535 " },
		{ "535 after a 334", AUTH_CONTINUE, AUTH_FAIL, { "AUTH CRAM-MD5\r\n", "d29ybGQ=\r\n" }, "535 " },
		{ "cancelled", AUTH_CONTINUE, 0, { "AUTH CRAM-MD5\r\n", "*\r\n" }, "501 " },
		{ "bad base64 response", AUTH_CONTINUE, 0, { "AUTH CRAM-MD5\r\n", "d29y!GQ=\r\n" }, "501 " },
		{ "bad base64 initial response", AUTH_OK, 0, { "AUTH PLAIN d29y!GQ=\r\n" }, "501 " },
		{ "454", AUTH_TEMP, 0, { "AUTH PLAIN =\r\n" }, "454 " },
		{ "501 from SASL", AUTH_SYNTAX, 0, { "AUTH CRAM-MD5 =\r\n" }, "501 " },
		{ "504 from SASL", AUTH_NOMECH, 0, { "AUTH CRAM-MD5\r\n" }, "504 " },
	};
	for (int broken = 0; broken <= 1; broken++)
		for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
			char err[64];
			fake_auth_init();
			fake_auth.reset_rc = broken ? AUTH_TEMP : AUTH_OK;
			new_session(auth_open(&cf, NULL, NULL, err, sizeof err));
			ehlo();
			bool chal = paths[i].rc0 == AUTH_CONTINUE;
			script(0, paths[i].rc0, chal ? "x" : NULL, chal ? 1 : 0);
			script(1, paths[i].rc1, NULL, 0);
			const char *o = feed(paths[i].lines[0]);
			if (paths[i].lines[1] != NULL) {
				ck_assert_msg(strncmp(o, "334 ", 4) == 0, "%s: got \"%s\"", paths[i].name, o);
				ck_assert_uint_eq(fake_auth.n_reset, 0);
				o = feed(paths[i].lines[1]);
			}
			ck_assert_msg(strncmp(o, paths[i].want, 4) == 0, "%s: got \"%s\"", paths[i].name, o);
			ck_assert_msg(fake_auth.n_reset == 1, "%s: %u SASL resets, want 1", paths[i].name,
				      fake_auth.n_reset);
			bool ok = paths[i].want[0] == '2';
			if (broken && !ok) {
				expect1(second_line(o), "421 ");
				ck_assert_int_eq(act, SA_CLOSE);
			} else {
				ck_assert_msg(strstr(o, "\r\n")[2] == '\0', "%s: got \"%s\"", paths[i].name, o);
				ck_assert_int_eq(act, SA_CONTINUE);
				/* 235 leads to the authenticated state, anything else back to the ready state */
				expect1(feed("ATRN x.invalid\r\n"), ok ? "450 " : "530 ");
			}
		}
}
END_TEST

/* ---- ATRN ---- */

START_TEST(test_atrn_before_auth_530)
{
	start();
	expect1(feed("ATRN a.example\r\n"), "530 ");
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	expect1(feed("ATRN\r\n"), "530 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_atrn_bad_syntax_501)
{
	static const char *const bad[] = {
		"ATRN \r\n", "ATRN a.example,\r\n", "ATRN ,a.example\r\n", "ATRN a.example ,b.example\r\n",
		"ATRN a.example,,b.example\r\n", "ATRN bad_domain.example\r\n", "ATRN example\r\n",
		"ATRN  a.example\r\n",
	};
	cf.hard_error_limit = 100;
	login();
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *o = feed(bad[i]);
		ck_assert_msg(strncmp(o, "501 ", 4) == 0, "%s: got \"%s\"", bad[i], o);
	}
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_atrn_too_many_501)
{
	login();
	expect1(feed("ATRN a.example,b.example,c.example,d.example,e.example\r\n"), "501 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_atrn_not_customers_domain_450)
{
	login();
	expect1(feed("ATRN a.example,evil.example\r\n"), "450 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

START_TEST(test_atrn_map_missing_451)
{
	free(cf.customer_map);
	cf.customer_map = strdup("/nonexistent-odmrd/customers.db");
	login();
	expect1(feed("ATRN\r\n"), "451 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_atrn_user_not_in_map_450)
{
	fake_auth.user = "mallory@example.net";
	login();
	expect1(feed("ATRN\r\n"), "450 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_atrn_all_domains)
{
	login();
	expect1(feed("ATRN\r\n"), "250 ");
	ck_assert_int_eq(act, SA_HANDOFF);
	ck_assert_uint_eq(fake_ho.n_prepare, 1);
	ck_assert_str_eq(fake_ho.user, "alice@example.net");
	ck_assert_uint_eq(fake_ho.n, 3);
	ck_assert_str_eq(fake_ho.domains[0], "a.example");
	ck_assert_str_eq(fake_ho.domains[1], "b.example");
	ck_assert_str_eq(fake_ho.domains[2], "c.example");
}
END_TEST

START_TEST(test_atrn_named_domains)
{
	login();
	expect1(feed("ATRN C.Example, a.example\r\n"), "250 ");
	ck_assert_uint_eq(fake_ho.n, 2);
	ck_assert_str_eq(fake_ho.domains[0], "c.example");
	ck_assert_str_eq(fake_ho.domains[1], "a.example");
}
END_TEST

START_TEST(test_atrn_realm_fallback_user)
{
	static const char *const m[] = { "carol", "carol.example", NULL };
	ck_assert_int_eq(unit_make_map(map, m), 0);
	free(cf.sasl_realm);
	cf.sasl_realm = strdup("example.net");
	fake_auth.user = "carol@example.net";
	login();
	expect1(feed("ATRN carol.example\r\n"), "250 ");
	ck_assert_str_eq(fake_ho.domains[0], "carol.example");
}
END_TEST

START_TEST(test_atrn_nomail_453)
{
	fake_ho.status = HO_NOMAIL;
	login();
	expect1(feed("ATRN\r\n"), "453 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_ptr_null(session_take_handoff(s));
	expect1(feed("QUIT\r\n"), "221 ");
}
END_TEST

START_TEST(test_atrn_busy_450)
{
	fake_ho.status = HO_BUSY;
	login();
	expect1(feed("ATRN a.example\r\n"), "450 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_ho.n_prepare, 1);
}
END_TEST

START_TEST(test_atrn_tempfail_451)
{
	fake_ho.status = HO_TEMPFAIL;
	login();
	expect1(feed("ATRN a.example\r\n"), "451 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	/* a later ATRN may succeed */
	fake_ho.status = HO_READY;
	expect1(feed("ATRN a.example\r\n"), "250 ");
	ck_assert_int_eq(act, SA_HANDOFF);
}
END_TEST

/*
 * Refused ATRNs (450, 451, 453) feed the error limit like any other error, so a customer asking
 * again and again is tarpitted past soft_error_limit and closed at hard_error_limit: 300 ATRNs in
 * one session reach the MTA at most hard_error_limit times.
 */
START_TEST(test_atrn_refusals_count_as_errors)
{
	static const enum ho_status st[] = { HO_NOMAIL, HO_BUSY, HO_TEMPFAIL };
	static const char *const want[] = { "453 ", "450 ", "451 " };
	for (size_t k = 0; k < 3; k++) {
		char err[64];
		fake_auth_init();
		fake_handoff_init();
		new_session(auth_open(&cf, NULL, NULL, err, sizeof err));
		tio.npauses = 0;
		fake_ho.status = st[k];
		login();
		unsigned n;
		for (n = 1; n <= 300 && act == SA_CONTINUE; n++) {
			const char *o = feed("ATRN a.example\r\n");
			ck_assert_msg(strncmp(o, want[k], 4) == 0, "ATRN %u: got \"%s\"", n, o);
			if (n < cf.hard_error_limit) {
				ck_assert_int_eq(act, SA_CONTINUE);
				ck_assert_uint_eq(pauses_of(111), (n > cf.soft_error_limit ? n - cf.soft_error_limit : 0));
			} else {
				expect1(second_line(o), "421 ");
				ck_assert_int_eq(act, SA_CLOSE);
			}
		}
		ck_assert_uint_eq(fake_ho.n_prepare, cf.hard_error_limit);
	}
	/* a refusal before the MTA is asked (a domain not the customer's) counts too */
	char err[64];
	fake_auth_init();
	fake_handoff_init();
	cf.hard_error_limit = 2;
	new_session(auth_open(&cf, NULL, NULL, err, sizeof err));
	login();
	expect1(feed("ATRN evil.example\r\n"), "450 ");
	const char *o = feed("ATRN evil.example\r\n");
	expect1(second_line(o), "421 ");
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

/* The queue run cannot start: 451, nothing handed off, and the runner only starts after prepare. */
START_TEST(test_atrn_start_fails_451)
{
	fake_ho.start_status = HO_TEMPFAIL;
	login();
	expect1(feed("ATRN a.example\r\n"), "451 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_ho.n_prepare, 1);
	ck_assert_uint_eq(fake_ho.n_start, 1);
	ck_assert_ptr_null(session_take_handoff(s));
}
END_TEST

START_TEST(test_atrn_ready_handoff)
{
	login();
	ck_assert_str_eq(feed("ATRN a.example,b.example\r\n"), "250 OK now reversing the connection\r\n");
	ck_assert_int_eq(act, SA_HANDOFF);
	ck_assert_ptr_eq(session_take_handoff(s), fake_handoff_object());
	ck_assert_ptr_null(session_take_handoff(s));
	/* the core takes no more commands */
	ck_assert_int_eq(session_input(s, "QUIT\r\n", 6), SA_CLOSE);
	ck_assert_str_eq(out_new(), "");
	session_free(s);
	s = NULL;
	ck_assert_uint_eq(fake_ho.n_abort, 0);
}
END_TEST

START_TEST(test_atrn_ready_not_taken_aborted_on_free)
{
	login();
	expect1(feed("ATRN\r\n"), "250 ");
	ck_assert_int_eq(act, SA_HANDOFF);
	session_free(s);
	s = NULL;
	ck_assert_uint_eq(fake_ho.n_abort, 1);
	ck_assert_ptr_eq(fake_ho.aborted, fake_handoff_object());
}
END_TEST

START_TEST(test_atrn_pending_before_prepare_554)
{
	login();
	tio.pending = 1;
	expect1(feed("ATRN\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

static void make_pending(void)
{
	tio.pending = 1;
}

START_TEST(test_atrn_pending_during_prepare_554)
{
	login();
	fake_ho.on_prepare = make_pending;
	expect1(feed("ATRN\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_ho.n_prepare, 1);
	ck_assert_uint_eq(fake_ho.n_start, 0);  /* the queue run never starts */
	ck_assert_uint_eq(fake_ho.n_abort, 1);
	ck_assert_ptr_eq(fake_ho.aborted, fake_handoff_object());
	ck_assert_ptr_null(session_take_handoff(s));
}
END_TEST

START_TEST(test_atrn_write_fails_on_250)
{
	login();
	tio.fail_write = 1;
	feed("ATRN\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_ho.n_abort, 1);
	ck_assert_ptr_null(session_take_handoff(s));
}
END_TEST

/* ---- other commands ---- */

START_TEST(test_pipelining_554)
{
	start();
	expect1(feed("EHLO a.example\r\nQUIT\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_pipelining_partial_554)
{
	login();
	expect1(feed("NOOP\r\nA"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_pipelining_atrn_554)
{
	login();
	expect1(feed("ATRN\r\n220 customer ready\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_split_input)
{
	const char *cmd = "EHLO client.example\r\n";
	start();
	for (size_t i = 0; cmd[i + 1]; i++) {
		ck_assert_str_eq(feedn(cmd + i, 1), "");
		ck_assert_int_eq(act, SA_CONTINUE);
	}
	ck_assert_str_eq(feedn(cmd + strlen(cmd) - 1, 1), EHLO_REPLY);
}
END_TEST

START_TEST(test_quit_greet)
{
	start();
	expect1(feed("QUIT\r\n"), "221 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_int_eq(session_input(s, "NOOP\r\n", 6), SA_CLOSE);
	ck_assert_str_eq(out_new(), "");
}
END_TEST

START_TEST(test_quit_ready)
{
	ehlo();
	expect1(feed("quit\r\n"), "221 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_quit_authed)
{
	login();
	expect1(feed("QUIT\r\n"), "221 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_noop_rset)
{
	start();
	expect1(feed("NOOP\r\n"), "250 ");
	expect1(feed("RSET\r\n"), "250 ");
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	expect1(feed("noop\r\n"), "250 ");
	expect1(feed("RSET\r\n"), "250 ");
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "235 ");
	expect1(feed("NOOP\r\n"), "250 ");
	expect1(feed("RSET\r\n"), "250 ");
	ck_assert_int_eq(act, SA_CONTINUE);
}
END_TEST

START_TEST(test_not_implemented_502)
{
	static const char *const cmds[] = {
		"MAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n", "DATA\r\n", "HELO a.example\r\n",
		"STARTTLS\r\n", "TURN\r\n", "ETRN a.example\r\n", "VRFY x\r\n", "FOO\r\n", "\r\n",
		" NOOP\r\n", "NOOPNOOPNOOP\r\n",
	};
	cf.hard_error_limit = 100;
	start();
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		const char *o = feed(cmds[i]);
		ck_assert_msg(strncmp(o, "502 ", 4) == 0, "%s: got \"%s\"", cmds[i], o);
		ck_assert_int_eq(act, SA_CONTINUE);
	}
}
END_TEST

START_TEST(test_8bit_500)
{
	ehlo();
	expect1(feed("NOOP caf\xc3\xa9\r\n"), "500 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	expect1(feed("EHLO \xff\r\n"), "500 ");
	expect1(feed("AUTH PLAIN \x80\r\n"), "500 ");
	ck_assert_uint_eq(fake_auth.n_start, 0);
}
END_TEST

START_TEST(test_bare_lf_500)
{
	start();
	expect1(feed("NOOP\n"), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_bare_cr_500)
{
	start();
	expect1(feed("NOOP\rQUIT\r\n"), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_nul_500)
{
	start();
	expect1(feedn("NO\0OP\r\n", 7), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_bare_lf_in_sasl_response_500)
{
	ehlo();
	script(0, AUTH_CONTINUE, "x", 1);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	expect1(feed("d29ybGQ=\n"), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_auth.n_step, 0);
}
END_TEST

/* "NOOP " padded with 'a' to TOTAL octets including CRLF; malloc'd. */
static char *noop_line(size_t total)
{
	char *l = malloc(total + 1);
	ck_assert_ptr_nonnull(l);
	memcpy(l, "NOOP ", 5);
	memset(l + 5, 'a', total - 7);
	memcpy(l + total - 2, "\r\n", 3);
	return l;
}

START_TEST(test_command_512_accepted)
{
	char *l = noop_line(512);
	start();
	expect1(feed(l), "250 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	free(l);
}
END_TEST

START_TEST(test_command_513_refused)
{
	char *l = noop_line(513);
	start();
	expect1(feed(l), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
	free(l);
}
END_TEST

START_TEST(test_command_too_long_without_crlf)
{
	char *l = noop_line(2000);
	start();
	expect1(feedn(l, 1000), "500 ");
	ck_assert_int_eq(act, SA_CLOSE);
	free(l);
}
END_TEST

/* PREFIX, then N base64 characters ('A': zero octets), then CRLF; malloc'd. */
static char *b64_line(const char *prefix, size_t n)
{
	size_t p = strlen(prefix);
	char *l = malloc(p + n + 3);
	ck_assert_ptr_nonnull(l);
	memcpy(l, prefix, p);
	memset(l + p, 'A', n);
	memcpy(l + p + n, "\r\n", 3);
	return l;
}

/* RFC 4954: a SASL response of 12288 octets of base64 (CRLF not counted) reaches the mechanism. */
START_TEST(test_auth_response_12288_accepted)
{
	char *l = b64_line("", AUTH_B64_MAX);
	ehlo();
	script(0, AUTH_CONTINUE, "x", 1);
	script(1, AUTH_FAIL, NULL, 0);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	expect1(feed(l), "535 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_auth.n_step, 1);
	ck_assert_uint_eq(fake_auth.inlen, AUTH_B64_MAX / 4 * 3);
	free(l);
}
END_TEST

START_TEST(test_auth_response_12289_refused)
{
	char *l = b64_line("", AUTH_B64_MAX + 1);
	ehlo();
	script(0, AUTH_CONTINUE, "x", 1);
	expect1(feed("AUTH CRAM-MD5\r\n"), "334 ");
	ck_assert_str_eq(feed(l), "500 Line too long\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_auth.n_step, 0);
	free(l);
}
END_TEST

START_TEST(test_auth_ir_12288_accepted)
{
	/* "AUTH PLAIN " + 12288 base64 characters + CRLF: 9216 decoded octets reach the mechanism */
	static unsigned char ir[AUTH_B64_MAX / 4 * 3];
	static char line[LB_SIZE + 1];
	for (size_t i = 0; i < sizeof ir; i++)
		ir[i] = (unsigned char)(i * 31 + 1);
	strcpy(line, "AUTH PLAIN ");
	b64(ir, sizeof ir, line + 11);
	strcat(line, "\r\n");
	ck_assert_uint_eq(strlen(line), 11 + AUTH_B64_MAX + 2);
	ehlo();
	script(0, AUTH_OK, NULL, 0);
	/* the mechanism name arrives split: the reader must not judge the line before it has it */
	ck_assert_str_eq(feedn(line, 8), "");
	expect1(feed(line + 8), "235 ");
	ck_assert_uint_eq(fake_auth.inlen, sizeof ir);
	ck_assert_int_eq(memcmp(fake_auth.in, ir, sizeof ir), 0);
}
END_TEST

/* The longest AUTH line of all: a 20-octet mechanism name and a 12288-octet initial response. */
START_TEST(test_auth_ir_12288_longest_mechanism)
{
	char *l = b64_line("AUTH X-TWENTY-OCTET-MECH1 ", AUTH_B64_MAX);
	fake_auth.mechs = "CRAM-MD5 X-TWENTY-OCTET-MECH1";
	ck_assert_uint_eq(strlen(l), LB_SIZE);
	start();
	ck_assert_ptr_nonnull(strstr(feed("EHLO client.example\r\n"), "X-TWENTY-OCTET-MECH1"));
	script(0, AUTH_OK, NULL, 0);
	expect1(feed(l), "235 ");
	ck_assert_str_eq(fake_auth.mech, "X-TWENTY-OCTET-MECH1");
	free(l);
}
END_TEST

START_TEST(test_auth_ir_12289_refused)
{
	char *l = b64_line("AUTH PLAIN ", AUTH_B64_MAX + 1);
	ehlo();
	ck_assert_str_eq(feed(l), "500 Line too long\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(fake_auth.n_start, 0);
	free(l);
}
END_TEST

/* Without a mechanism name of at most 20 octets, an AUTH line is an ordinary 512-octet command. */
START_TEST(test_auth_line_without_mechanism_512)
{
	char *l = b64_line("AUTH ", 600);
	ehlo();
	ck_assert_str_eq(feed(l), "500 Line too long\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	free(l);
}
END_TEST

/* ---- error limits, timeouts, write failure ---- */

START_TEST(test_error_tarpit_and_hard_limit)
{
	ehlo();
	for (unsigned i = 1; i <= 9; i++) {
		expect1(feed("FOO\r\n"), "502 ");
		ck_assert_int_eq(act, SA_CONTINUE);
		unsigned want = i > 3 ? i - 3 : 0;
		ck_assert_msg(pauses_of(111) == want, "after %u errors: %u pauses, want %u", i,
			      pauses_of(111), want);
	}
	const char *o = feed("FOO\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_msg(strncmp(o, "502 ", 4) == 0, "got \"%s\"", o);
	expect1(second_line(o), "421 " HOST " ");
	ck_assert_uint_ge(pauses_of(111), 7);
}
END_TEST

START_TEST(test_error_kinds_all_count)
{
	/* 501, 502, 503, 504, 530 and 500 all feed the same counter */
	cf.soft_error_limit = 0;
	cf.hard_error_limit = 6;
	start();
	expect1(feed("EHLO\r\n"), "501 ");
	expect1(feed("FOO\r\n"), "502 ");
	expect1(feed("AUTH PLAIN\r\n"), "503 ");
	expect1(feed("ATRN\r\n"), "530 ");
	expect1(feed("NOOP \xe9\r\n"), "500 ");
	ck_assert_uint_eq(pauses_of(111), 5);
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	const char *o = feed("AUTH BOGUS\r\n");
	ck_assert_msg(strncmp(o, "504 ", 4) == 0, "got \"%s\"", o);
	expect1(second_line(o), "421 ");
	ck_assert_int_eq(act, SA_CLOSE);
}
END_TEST

START_TEST(test_hard_limit_without_hostname)
{
	/* cf_defaults leaves hostname NULL; replies must still name us ("localhost") */
	free(cf.hostname);
	cf.hostname = NULL;
	cf.hard_error_limit = 4;
	start();
	for (int i = 0; i < 3; i++)
		expect1(feed("FOO\r\n"), "502 ");
	const char *o = feed("FOO\r\n");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_msg(strstr(o, "\r\n421 localhost ") != NULL, "got \"%s\"", o);
}
END_TEST

START_TEST(test_good_commands_do_not_count)
{
	cf.hard_error_limit = 2;
	cf.soft_error_limit = 1;
	start();
	for (int i = 0; i < 20; i++)
		expect1(feed("NOOP\r\n"), "250 ");
	expect1(feed("FOO\r\n"), "502 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(tio.npauses, 0);
}
END_TEST

/*
 * NOOP, RSET and a repeated EHLO move nothing forward: like Postfix's smtpd_junk_command_limit,
 * junk_command_limit of them are answered, the next one gets 421 and the session ends, in every
 * state before the turn. A first EHLO, AUTH and ATRN are not junk.
 */
START_TEST(test_junk_command_limit)
{
	cf.junk_command_limit = 5;
	start();
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_REPLY);
	expect1(feed("NOOP\r\n"), "250 ");
	expect1(feed("RSET\r\n"), "250 ");
	ck_assert_str_eq(feed("EHLO again.example\r\n"), EHLO_REPLY);
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN =\r\n"), "235 ");
	expect1(feed("noop\r\n"), "250 ");
	fake_ho.status = HO_NOMAIL;
	expect1(feed("ATRN a.example\r\n"), "453 ");
	expect1(feed("RSET\r\n"), "250 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_str_eq(feed("NOOP\r\n"), HOST_421_JUNK);
	ck_assert_int_eq(act, SA_CLOSE);
	/* the default is Postfix's: 100 */
	cf_free(&cf);
	cf_defaults(&cf);
	ck_assert_uint_eq(cf.junk_command_limit, 100);
	cf.hostname = strdup(HOST);
	free(cf.customer_map);
	cf.customer_map = strdup(map);
	new_session(NULL);
	start();
	for (int i = 0; i < 100; i++)
		expect1(feed("NOOP\r\n"), "250 ");
	ck_assert_str_eq(feed("NOOP\r\n"), HOST_421_JUNK);
}
END_TEST

START_TEST(test_timeout_421)
{
	ehlo();
	ck_assert_int_eq(session_timeout(s, 1), SA_CLOSE);
	expect1(out_new(), "421 ");
}
END_TEST

START_TEST(test_session_deadline_421)
{
	login();
	ck_assert_int_eq(session_timeout(s, 0), SA_CLOSE);
	expect1(out_new(), "421 ");
}
END_TEST

START_TEST(test_eof)
{
	ehlo();
	ck_assert_int_eq(session_eof(s), SA_CLOSE);
	ck_assert_str_eq(out_new(), "");
}
END_TEST

START_TEST(test_write_failure_closes)
{
	ehlo();
	tio.fail_write = 1;
	ck_assert_int_eq(session_input(s, "NOOP\r\n", 6), SA_CLOSE);
	ck_assert_uint_gt(tio.writes, 0);
}
END_TEST

START_TEST(test_write_failure_at_greeting)
{
	tio.fail_write = 1;
	ck_assert_int_eq(session_start(s, NULL), SA_CLOSE);
}
END_TEST

START_TEST(test_summary_result)
{
	login();
	expect1(feed("ATRN\r\n"), "250 ");
	struct handoff *h = session_take_handoff(s);
	ck_assert_ptr_nonnull(h);
	session_set_result(s, "done");
	session_free(s);
	s = NULL;
	ck_assert_uint_eq(fake_ho.n_abort, 0);
}
END_TEST

/* ---- STARTTLS ---- */

#define EHLO_TLS_REPLY "250-" HOST "\r\n250-STARTTLS\r\n250-AUTH CRAM-MD5 PLAIN\r\n250 ATRN\r\n"

/* A session whose connection can start TLS: a certificate configured, LEVEL, AUTH_ONLY. */
static void tls_session(enum cf_tls_level level, bool auth_only)
{
	char err[64];

	free(cf.tls_cert_file);
	free(cf.tls_key_file);
	cf.tls_cert_file = strdup("/etc/odmrd/cert.pem");
	cf.tls_key_file = strdup("/etc/odmrd/key.pem");
	cf.tls_security_level = level;
	cf.tls_auth_only = auth_only;
	tls_prepares = 0;
	tls_prepare_rc = 0;
	session_free(s);
	s = session_new(&cf, &io_tls, auth_open(&cf, NULL, NULL, err, sizeof err), "192.0.2.7");
	ck_assert_ptr_nonnull(s);
	start();
}

/* What conn.c reports after a handshake with a verified client certificate for CN "alice". */
static const struct tls_info tls_alice = {
	"TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, false, true, true, "alice", ""
};

/* STARTTLS accepted and the handshake "done". */
static void go_tls(void)
{
	expect1(feed("STARTTLS\r\n"), "220 2.0.0 ");
	ck_assert_int_eq(act, SA_STARTTLS);
	static const unsigned char cb[32] = { 1, 2, 3 };
	struct sess_tls t = { &tls_alice, "tls-exporter", cb, sizeof cb };
	session_tls_started(s, &t);
}

START_TEST(test_starttls_ehlo_lists_it)
{
	tls_session(CF_TLS_MAY, false);
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_TLS_REPLY);
	ck_assert_uint_eq(tls_prepares, 0);   /* nothing set up for a client that may never ask */
}
END_TEST

START_TEST(test_starttls_not_offered)
{
	/* No certificate: neither listed nor accepted (the plaintext session is as before). */
	ehlo();
	expect1(feed("STARTTLS\r\n"), "502 ");
	/* A certificate but a connection that cannot do it, or level none: the same. */
	cf.tls_cert_file = strdup("/etc/odmrd/cert.pem");
	cf.tls_key_file = strdup("/etc/odmrd/key.pem");
	cf.tls_security_level = CF_TLS_MAY;
	new_session(NULL);
	start();
	ck_assert_ptr_null(strstr(feed("EHLO c.example\r\n"), "STARTTLS"));
	tls_session(CF_TLS_NONE, false);
	ck_assert_ptr_null(strstr(feed("EHLO c.example\r\n"), "STARTTLS"));
	expect1(feed("STARTTLS\r\n"), "502 ");
}
END_TEST

START_TEST(test_starttls_220_and_back_to_greet)
{
	tls_session(CF_TLS_MAY, false);
	feed("EHLO client.example\r\n");
	go_tls();
	ck_assert_uint_eq(tls_prepares, 1);
	/* SASL got the TLS properties: cipher bits, the certificate's identity, the binding. */
	ck_assert_uint_eq(fake_auth.n_tls, 1);
	ck_assert_uint_eq(fake_auth.tls_ssf, 128);
	ck_assert_str_eq(fake_auth.tls_external, "alice");
	ck_assert_str_eq(fake_auth.tls_cb_name, "tls-exporter");
	ck_assert_uint_eq(fake_auth.tls_cb_len, 32);
	/* Back to before EHLO (RFC 3207 4.2): AUTH first is refused, EHLO no longer lists STARTTLS. */
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "503 ");
	fake_auth.mechs_tls = "CRAM-MD5 PLAIN EXTERNAL";
	ck_assert_str_eq(feed("EHLO client.example\r\n"),
			 "250-" HOST "\r\n250-AUTH CRAM-MD5 PLAIN EXTERNAL\r\n250 ATRN\r\n");
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH EXTERNAL =\r\n"), "235 ");
}
END_TEST

START_TEST(test_starttls_twice_503)
{
	tls_session(CF_TLS_MAY, false);
	go_tls();
	expect1(feed("STARTTLS\r\n"), "503 5.5.1 TLS already active");
	feed("EHLO client.example\r\n");
	expect1(feed("STARTTLS\r\n"), "503 5.5.1 TLS already active");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(tls_prepares, 1);
}
END_TEST

START_TEST(test_starttls_argument_501)
{
	tls_session(CF_TLS_MAY, false);
	expect1(feed("STARTTLS now\r\n"), "501 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(tls_prepares, 0);
}
END_TEST

START_TEST(test_starttls_injection_554)
{
	/* CVE-2011-0411: octets after the STARTTLS line, not yet read by us, must never be taken as
	 * commands: no 220, no handshake, the session ends. */
	tls_session(CF_TLS_MAY, false);
	tio.pending = 1;
	expect1(feed("STARTTLS\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(tls_prepares, 0);
}
END_TEST

START_TEST(test_starttls_pipelined_554)
{
	/* The same octets already in our buffer (one read). */
	tls_session(CF_TLS_MAY, false);
	expect1(feed("STARTTLS\r\nRSET\r\n"), "554 ");
	ck_assert_int_eq(act, SA_CLOSE);
	ck_assert_uint_eq(tls_prepares, 0);
}
END_TEST

START_TEST(test_starttls_prepare_fails_454)
{
	/* A certificate that does not parse or match its key (found only now, under "may"): 454,
	 * the session goes on in plaintext as the client chooses - never a 220 followed by nothing. */
	tls_session(CF_TLS_MAY, false);
	tls_prepare_rc = -1;
	expect1(feed("STARTTLS\r\n"), "454 4.7.0 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_str_eq(feed("EHLO client.example\r\n"), EHLO_TLS_REPLY);
}
END_TEST

START_TEST(test_starttls_after_auth_503)
{
	tls_session(CF_TLS_MAY, false);
	feed("EHLO client.example\r\n");
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "235 ");
	expect1(feed("STARTTLS\r\n"), "503 ");
	ck_assert_uint_eq(tls_prepares, 0);
}
END_TEST

START_TEST(test_encrypt_refusals_530)
{
	tls_session(CF_TLS_ENCRYPT, false);
	/* No AUTH in EHLO before TLS: it could not be used. */
	ck_assert_str_eq(feed("EHLO client.example\r\n"),
			 "250-" HOST "\r\n250-STARTTLS\r\n250 ATRN\r\n");
	expect1(feed("AUTH CRAM-MD5\r\n"), "530 5.7.0 Must issue a STARTTLS command first");
	ck_assert_uint_eq(fake_auth.n_start, 0);
	expect1(feed("ATRN a.example\r\n"), "530 ");
	go_tls();
	ck_assert_str_eq(feed("EHLO client.example\r\n"),
			 "250-" HOST "\r\n250-AUTH CRAM-MD5 PLAIN\r\n250 ATRN\r\n");
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "235 ");
	ck_assert_str_eq(feed("ATRN a.example\r\n"), "250 OK now reversing the connection\r\n");
	ck_assert_int_eq(act, SA_HANDOFF);
}
END_TEST

START_TEST(test_tls_auth_only)
{
	tls_session(CF_TLS_MAY, true);
	ck_assert_str_eq(feed("EHLO client.example\r\n"),
			 "250-" HOST "\r\n250-STARTTLS\r\n250 ATRN\r\n");
	expect1(feed("AUTH CRAM-MD5\r\n"), "530 5.7.0 Must issue a STARTTLS command first");
	go_tls();
	ck_assert_str_eq(feed("EHLO client.example\r\n"),
			 "250-" HOST "\r\n250-AUTH CRAM-MD5 PLAIN\r\n250 ATRN\r\n");
}
END_TEST

START_TEST(test_tls_exec_refused_451)
{
	/* mta = exec hands the raw socket to a program: never under TLS. */
	cf.mta = CF_MTA_EXEC;
	tls_session(CF_TLS_MAY, false);
	go_tls();
	feed("EHLO client.example\r\n");
	script(0, AUTH_OK, NULL, 0);
	expect1(feed("AUTH PLAIN " PLAIN_IR "\r\n"), "235 ");
	expect1(feed("ATRN a.example\r\n"), "451 ");
	ck_assert_int_eq(act, SA_CONTINUE);
	ck_assert_uint_eq(fake_ho.n_prepare, 0);
}
END_TEST

START_TEST(test_tls_summary_line_fields)
{
	char log[4096], path[4200];
	FILE *f;

	snprintf(path, sizeof path, "%s/odmrd.log", dir);
	ck_assert_int_eq(log_open(LOG_MAIL, path), 0);
	tls_session(CF_TLS_MAY, false);
	go_tls();
	feed("QUIT\r\n");
	session_free(s);
	s = NULL;
	log_close();
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(log, 1, sizeof log - 1, f);
	fclose(f);
	log[n] = '\0';
	ck_assert_ptr_nonnull(strstr(log, "TLS from 192.0.2.7: TLSv1.3/TLS_AES_128_GCM_SHA256, client certificate alice"));
	ck_assert_ptr_nonnull(strstr(log, "code=221 result=- tls=TLSv1.3/TLS_AES_128_GCM_SHA256 cert=alice\n"));
}
END_TEST

Suite *session_suite(void)
{
	Suite *su = suite_create("session");
	TCase *tc = tcase_create("greeting");

	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_greeting_220);
	tcase_add_test(tc, test_greeting_pause_then_220);
	tcase_add_test(tc, test_greeting_554_when_pending);
	tcase_add_test(tc, test_greeting_421_startup_err);
	tcase_add_test(tc, test_ehlo_multiline);
	tcase_add_test(tc, test_ehlo_address_literal);
	tcase_add_test(tc, test_ehlo_without_argument);
	tcase_add_test(tc, test_ehlo_without_auth_module);
	tcase_add_test(tc, test_ehlo_readies_sasl_once);
	tcase_add_test(tc, test_ehlo_sasl_unusable_421);
	tcase_add_test(tc, test_ehlo_after_auth_503);
	suite_add_tcase(su, tc);

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_auth_before_ehlo);
	tcase_add_test(tc, test_auth_unadvertised_504);
	tcase_add_test(tc, test_auth_200_char_mech_504);
	tcase_add_test(tc, test_auth_no_mechanism_501);
	tcase_add_test(tc, test_auth_mech_case_insensitive);
	tcase_add_test(tc, test_auth_invalid_base64_ir_501);
	tcase_add_test(tc, test_auth_ir_equals_is_empty);
	tcase_add_test(tc, test_auth_ir_decoded);
	tcase_add_test(tc, test_auth_continue_exchange);
	tcase_add_test(tc, test_auth_empty_challenge);
	tcase_add_test(tc, test_auth_long_challenge);
	tcase_add_test(tc, test_auth_long_response);
	tcase_add_test(tc, test_auth_cancel);
	tcase_add_test(tc, test_auth_bad_base64_response);
	tcase_add_test(tc, test_auth_wrong_credentials);
	tcase_add_test(tc, test_auth_wrong_credentials_after_step);
	tcase_add_test(tc, test_auth_temp_454);
	tcase_add_test(tc, test_auth_syntax_501);
	tcase_add_test(tc, test_auth_backend_nomech_504);
	tcase_add_test(tc, test_auth_user_unknown_454);
	tcase_add_test(tc, test_auth_max_failures);
	tcase_add_test(tc, test_auth_reset_failure_421);
	tcase_add_test(tc, test_auth_twice_503);
	tcase_add_test(tc, test_auth_success_data);
	tcase_add_test(tc, test_auth_every_exit_resets_sasl);
	suite_add_tcase(su, tc);

	tc = tcase_create("atrn");
	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_atrn_before_auth_530);
	tcase_add_test(tc, test_atrn_bad_syntax_501);
	tcase_add_test(tc, test_atrn_too_many_501);
	tcase_add_test(tc, test_atrn_not_customers_domain_450);
	tcase_add_test(tc, test_atrn_map_missing_451);
	tcase_add_test(tc, test_atrn_user_not_in_map_450);
	tcase_add_test(tc, test_atrn_all_domains);
	tcase_add_test(tc, test_atrn_named_domains);
	tcase_add_test(tc, test_atrn_realm_fallback_user);
	tcase_add_test(tc, test_atrn_nomail_453);
	tcase_add_test(tc, test_atrn_busy_450);
	tcase_add_test(tc, test_atrn_tempfail_451);
	tcase_add_test(tc, test_atrn_start_fails_451);
	tcase_add_test(tc, test_atrn_refusals_count_as_errors);
	tcase_add_test(tc, test_atrn_ready_handoff);
	tcase_add_test(tc, test_atrn_ready_not_taken_aborted_on_free);
	tcase_add_test(tc, test_atrn_pending_before_prepare_554);
	tcase_add_test(tc, test_atrn_pending_during_prepare_554);
	tcase_add_test(tc, test_atrn_write_fails_on_250);
	tcase_add_test(tc, test_summary_result);
	suite_add_tcase(su, tc);

	tc = tcase_create("commands");
	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_pipelining_554);
	tcase_add_test(tc, test_pipelining_partial_554);
	tcase_add_test(tc, test_pipelining_atrn_554);
	tcase_add_test(tc, test_split_input);
	tcase_add_test(tc, test_quit_greet);
	tcase_add_test(tc, test_quit_ready);
	tcase_add_test(tc, test_quit_authed);
	tcase_add_test(tc, test_noop_rset);
	tcase_add_test(tc, test_junk_command_limit);
	tcase_add_test(tc, test_not_implemented_502);
	tcase_add_test(tc, test_8bit_500);
	tcase_add_test(tc, test_bare_lf_500);
	tcase_add_test(tc, test_bare_cr_500);
	tcase_add_test(tc, test_nul_500);
	tcase_add_test(tc, test_bare_lf_in_sasl_response_500);
	tcase_add_test(tc, test_command_512_accepted);
	tcase_add_test(tc, test_command_513_refused);
	tcase_add_test(tc, test_command_too_long_without_crlf);
	tcase_add_test(tc, test_auth_response_12288_accepted);
	tcase_add_test(tc, test_auth_response_12289_refused);
	tcase_add_test(tc, test_auth_ir_12288_accepted);
	tcase_add_test(tc, test_auth_ir_12288_longest_mechanism);
	tcase_add_test(tc, test_auth_ir_12289_refused);
	tcase_add_test(tc, test_auth_line_without_mechanism_512);
	suite_add_tcase(su, tc);

	tc = tcase_create("starttls");
	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_starttls_ehlo_lists_it);
	tcase_add_test(tc, test_starttls_not_offered);
	tcase_add_test(tc, test_starttls_220_and_back_to_greet);
	tcase_add_test(tc, test_starttls_twice_503);
	tcase_add_test(tc, test_starttls_argument_501);
	tcase_add_test(tc, test_starttls_injection_554);
	tcase_add_test(tc, test_starttls_pipelined_554);
	tcase_add_test(tc, test_starttls_prepare_fails_454);
	tcase_add_test(tc, test_starttls_after_auth_503);
	tcase_add_test(tc, test_encrypt_refusals_530);
	tcase_add_test(tc, test_tls_auth_only);
	tcase_add_test(tc, test_tls_summary_line_fields);
	tcase_add_test(tc, test_tls_exec_refused_451);
	suite_add_tcase(su, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, sess_setup, sess_teardown);
	tcase_add_test(tc, test_error_tarpit_and_hard_limit);
	tcase_add_test(tc, test_error_kinds_all_count);
	tcase_add_test(tc, test_hard_limit_without_hostname);
	tcase_add_test(tc, test_good_commands_do_not_count);
	tcase_add_test(tc, test_timeout_421);
	tcase_add_test(tc, test_session_deadline_421);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_write_failure_closes);
	tcase_add_test(tc, test_write_failure_at_greeting);
	suite_add_tcase(su, tc);
	return su;
}
