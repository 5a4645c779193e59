/*
 * check_relay.c - the reversed-state relay's own socket handling and customer greeting, without an
 * MTA: TCP_NODELAY on the customer's TCP socket (without it every message waited ~40 ms for a
 * delayed ACK: 44 vs 480 msg/s in bench/), a socketpair customer still works, and relay_greet's
 * EHLO exchange (name sent, customer extensions filtered to the allow-list, HELO fallback), and
 * the DATA copy: byte-exact for a message several line buffers long, bare LF refused before
 * the customer could see an end of data, a command sent right after the end still answered.
 */
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay.h"
#include "unit.h"

/* A connected loopback TCP pair: *a is the provider's end, *b the customer's. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	int ls = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(ls, 0);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(ls, 1), 0);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
	*b = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(*b, (struct sockaddr *)&sin, sizeof sin), 0);
	*a = accept(ls, NULL, NULL);
	ck_assert_int_ge(*a, 0);
	close(ls);
}

/* Read what the relay sent to the customer end so far (the socket buffer holds it all). */
static void drain(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
}

START_TEST(test_nodelay_on_tcp_customer)
{
	int a, b, v = 0;
	socklen_t vl = sizeof v;

	tcp_pair(&a, &b);
	ck_assert_int_eq(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
	ck_assert_int_eq(v, 0);   /* the kernel's default: Nagle on */
	struct relay *r = relay_new(a, a, "provider.test", 5);
	ck_assert_ptr_nonnull(r);
	vl = sizeof v;
	ck_assert_int_eq(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
	ck_assert_int_eq(v, 1);
	relay_free(r);
	close(a);
	close(b);
}
END_TEST

/* Read one reply from an MTA-side connection (waits up to 2 s). */
static void mta_read(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ssize_t n = read(fd, buf, len - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
}

START_TEST(test_greet_filters_extensions)
{
	int sv[2];
	char got[512];
	char *dir = unit_tmpdir();
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	const char *cust = "220 customer.test ESMTP\r\n"
			   "250-customer.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-STARTTLS\r\n"
			   "250-8BITMIME\r\n250 CHUNKING\r\n";
	ck_assert_int_eq(write(sv[1], cust, strlen(cust)), (ssize_t)strlen(cust));
	struct relay *r = relay_new(sv[0], sv[0], "provider.test", 5);
	ck_assert_ptr_nonnull(r);   /* not TCP: the option fails quietly */
	ck_assert_int_eq(relay_greet(r, 5), RELAY_OK);
	drain(sv[1], got, sizeof got);
	ck_assert_str_eq(got, "EHLO provider.test\r\n");

	/* An MTA connecting gets the customer's greeting, and to EHLO the allow-listed extensions
	 * (no STARTTLS, no CHUNKING) plus our own PIPELINING, once. */
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/a.example", dir);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0), m = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(ls, 1), 0);
	ck_assert_int_eq(relay_listen(r, ls, false), 0);
	ck_assert_int_eq(connect(m, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(relay_step(r, 2000), RELAY_OK);
	mta_read(m, got, sizeof got);
	ck_assert_str_eq(got, "220 customer.test ESMTP\r\n");
	ck_assert_int_eq(write(m, "EHLO mta.test\r\n", 15), 15);
	ck_assert_int_eq(relay_step(r, 2000), RELAY_OK);
	mta_read(m, got, sizeof got);
	ck_assert_str_eq(got, "250-customer.test hello\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 PIPELINING\r\n");
	ck_assert_uint_eq(relay_conns(r), 1);
	relay_stop_listening(r);
	relay_free(r);
	close(m);
	close(sv[0]);
	close(sv[1]);
	unit_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_greet_helo_fallback)
{
	int sv[2];
	char got[512];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	const char *cust = "220 old.test SMTP\r\n502 5.5.2 no EHLO here\r\n250 old.test\r\n";
	ck_assert_int_eq(write(sv[1], cust, strlen(cust)), (ssize_t)strlen(cust));
	struct relay *r = relay_new(sv[0], sv[0], "provider.test", 5);
	ck_assert_int_eq(relay_greet(r, 5), RELAY_OK);
	drain(sv[1], got, sizeof got);
	ck_assert_str_eq(got, "EHLO provider.test\r\nHELO provider.test\r\n");
	relay_free(r);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_greet_refused)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	const char *cust = "554 go away\r\n";
	ck_assert_int_eq(write(sv[1], cust, strlen(cust)), (ssize_t)strlen(cust));
	struct relay *r = relay_new(sv[0], sv[0], "provider.test", 5);
	ck_assert_int_eq(relay_greet(r, 5), RELAY_CUSTOMER_LOST);
	relay_free(r);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A relay whose customer (sv[1]) has already queued REPLIES, and one MTA connection *m. */
struct rig {
	int sv[2], ls, m;
	char *dir;
	struct relay *r;
};

static void rig_up(struct rig *g, const char *replies)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char got[512];
	const char *greet = "220 customer.test ESMTP\r\n250-customer.test\r\n250 8BITMIME\r\n";

	g->dir = unit_tmpdir();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g->sv), 0);
	ck_assert_int_eq(write(g->sv[1], greet, strlen(greet)), (ssize_t)strlen(greet));
	ck_assert_int_eq(write(g->sv[1], replies, strlen(replies)), (ssize_t)strlen(replies));
	g->r = relay_new(g->sv[0], g->sv[0], "provider.test", 5);
	ck_assert_int_eq(relay_greet(g->r, 5), RELAY_OK);
	drain(g->sv[1], got, sizeof got);   /* our EHLO */
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/a.example", g->dir);
	g->ls = socket(AF_UNIX, SOCK_STREAM, 0);
	g->m = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(g->ls, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(g->ls, 1), 0);
	ck_assert_int_eq(relay_listen(g->r, g->ls, true), 0);   /* LMTP: one reply per recipient */
	ck_assert_int_eq(connect(g->m, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(relay_step(g->r, 2000), RELAY_OK);
	mta_read(g->m, got, sizeof got);
	ck_assert_str_eq(got, "220 customer.test ESMTP\r\n");
}

static void rig_down(struct rig *g)
{
	relay_stop_listening(g->r);
	relay_free(g->r);
	close(g->m);
	close(g->sv[0]);
	close(g->sv[1]);
	unit_rmtree(g->dir);
	free(g->dir);
}

/* Everything the customer end has received (up to LEN-1 octets). */
static size_t drain_all(int fd, char *buf, size_t len)
{
	size_t o = 0;
	ssize_t n;

	while (o < len - 1 && (n = recv(fd, buf + o, len - 1 - o, MSG_DONTWAIT)) > 0)
		o += (size_t)n;
	buf[o] = '\0';
	return o;
}

/* Run relay steps until the MTA end has WANT octets of replies, the relay stops, or 3 steps in
 * a row change nothing; returns the last rc. */
static enum relay_rc steps_until(struct rig *g, char *got, size_t len, size_t want)
{
	size_t o = 0;
	enum relay_rc rc = RELAY_OK;

	for (int idle = 0; idle < 3 && o < want && rc == RELAY_OK;) {
		size_t before = o;
		rc = relay_step(g->r, 100);
		ssize_t n;
		while (o < len - 1 && (n = recv(g->m, got + o, len - 1 - o, MSG_DONTWAIT)) > 0)
			o += (size_t)n;
		idle = o == before ? idle + 1 : 0;
	}
	got[o] = '\0';
	return rc;
}

/* An 80 KiB body of CRLF lines, some starting with a (stuffed) dot. */
static char *make_body(size_t *len)
{
	char *b = malloc(90000);
	size_t o = 0;

	for (int i = 0; o < 80 * 1024; i++)
		o += (size_t)sprintf(b + o, "%sline %05d %s\r\n", i % 7 == 0 ? ".." : "", i,
				     "abcdefghijklmnopqrstuvwxyz0123456789");
	b[o] = '\0';
	*len = o;
	return b;
}

START_TEST(test_data_copied_exactly)
{
	struct rig g;
	size_t blen;
	char *body = make_body(&blen), got[512], *cust = malloc(200000);
	const char *head = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nRCPT TO:<v@a.example>\r\nDATA\r\n";
	const char *want_mta = "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n250 queued\r\n221 2.0.0 Bye\r\n";

	rig_up(&g, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
	ck_assert_int_eq(write(g.m, head, strlen(head)), (ssize_t)strlen(head));
	ck_assert_int_eq(write(g.m, body, blen), (ssize_t)blen);
	/* The end of data and QUIT in one write: QUIT must still be read and answered. */
	ck_assert_int_eq(write(g.m, ".\r\nQUIT\r\n", 9), 9);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, strlen(want_mta)), RELAY_OK);
	ck_assert_str_eq(got, want_mta);
	size_t n = drain_all(g.sv[1], cust, 200000);
	ck_assert_uint_eq(n, strlen(head) + blen + 3);
	ck_assert_int_eq(memcmp(cust, head, strlen(head)), 0);
	ck_assert_int_eq(memcmp(cust + strlen(head), body, blen), 0);
	ck_assert_int_eq(memcmp(cust + strlen(head) + blen, ".\r\n", 3), 0);
	rig_down(&g);
	free(body);
	free(cust);
}
END_TEST

START_TEST(test_data_bare_lf_aborts)
{
	struct rig g;
	size_t blen;
	char *body = make_body(&blen), got[512], *cust = malloc(200000);
	const char *head = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n";

	body[70000] = '\n';   /* a bare LF deep inside the raw-read part */
	rig_up(&g, "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
	ck_assert_int_eq(write(g.m, head, strlen(head)), (ssize_t)strlen(head));
	ck_assert_int_eq(write(g.m, body, blen), (ssize_t)blen);
	ck_assert_int_eq(write(g.m, ".\r\n", 3), 3);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 10000), RELAY_ABORT);
	ck_assert_str_eq(got, "250 ok\r\n250 ok\r\n354 go\r\n");   /* never an end-of-data reply */
	size_t n = drain_all(g.sv[1], cust, 200000);
	ck_assert_ptr_null(memmem(cust, n, "\r\n.\r\n", 5));    /* the customer saw no end of data */
	ck_assert_uint_lt(n, strlen(head) + 70000);
	rig_down(&g);
	free(body);
	free(cust);
}
END_TEST

Suite *relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("relay");

	tcase_add_test(tc, test_nodelay_on_tcp_customer);
	tcase_add_test(tc, test_greet_filters_extensions);
	tcase_add_test(tc, test_greet_helo_fallback);
	tcase_add_test(tc, test_greet_refused);
	tcase_add_test(tc, test_data_copied_exactly);
	tcase_add_test(tc, test_data_bare_lf_aborts);
	suite_add_tcase(s, tc);
	return s;
}
