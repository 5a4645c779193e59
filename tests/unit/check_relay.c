/*
 * check_relay.c - the reversed-state relay's own socket handling and customer greeting, without an
 * MTA: TCP_NODELAY on the customer's TCP socket (without it every message waited ~40 ms for a
 * delayed ACK: 44 vs 480 msg/s in bench/), a socketpair customer still works, and relay_greet's
 * EHLO exchange (name sent, customer extensions filtered to the allow-list, HELO fallback).
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

	/* An MTA connecting gets the customer's greeting, and to EHLO only allow-listed extensions:
	 * no PIPELINING (commands are relayed one at a time), no STARTTLS, no CHUNKING. */
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
	ck_assert_str_eq(got, "250-customer.test hello\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
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

Suite *relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("relay");

	tcase_add_test(tc, test_nodelay_on_tcp_customer);
	tcase_add_test(tc, test_greet_filters_extensions);
	tcase_add_test(tc, test_greet_helo_fallback);
	tcase_add_test(tc, test_greet_refused);
	suite_add_tcase(s, tc);
	return s;
}
