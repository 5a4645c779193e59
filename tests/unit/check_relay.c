/*
 * check_relay.c - the reversed-state relay's own socket handling and customer greeting, without an
 * MTA: TCP_NODELAY on the customer's TCP socket (without it every message waited ~40 ms for a
 * delayed ACK: 44 vs 480 msg/s in bench/), a socketpair customer still works, and relay_greet's
 * EHLO exchange (name sent, customer extensions filtered to the allow-list, HELO fallback), and
 * the DATA copy: byte-exact for a message several line buffers long, bare LF refused before
 * the customer could see an end of data, a command sent right after the end still answered,
 * data sent on in few large writes (not one per read), a customer lost mid-message leaving the
 * MTA without an end-of-data reply; replies to a pipelined batch held until the batch is done;
 * relay_watch ending a wait; and the one "msg" log line per transaction (issue 13): sender and
 * recipients escaped, size as the customer stores it, every recipient's fate, the final reply,
 * bounded with many recipients, and the reason when a transaction ends unfinished.
 */
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "unit.h"

/* A cap far away: the tests that are not about max_session_time never meet it. */
#define FAR_CAP (net_now_ms() + 3600 * 1000LL)

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
	struct conn *c = conn_new(a, a);
	ck_assert_ptr_nonnull(c);
	vl = sizeof v;
	ck_assert_int_eq(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
	ck_assert_int_eq(v, 1);
	conn_free(c, 0);
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

static struct conn *cust_conn;
static int cust_type = SOCK_STREAM;   /* SOCK_SEQPACKET: the customer end sees each write apart */

/* A relay on a socketpair whose customer end (sv[1]) has already queued SCRIPT. */
static struct relay *cust_relay_cap(int sv[2], const char *script, unsigned timeout_s, long long cap)
{
	ck_assert_int_eq(socketpair(AF_UNIX, cust_type, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], script, strlen(script)), (ssize_t)strlen(script));
	cust_conn = conn_new(sv[0], sv[0]);   /* not TCP: the NODELAY option fails quietly */
	ck_assert_ptr_nonnull(cust_conn);
	struct relay *r = relay_new(cust_conn, "provider.test", timeout_s, cap);
	ck_assert_ptr_nonnull(r);
	return r;
}

static struct relay *cust_relay(int sv[2], const char *script)
{
	return cust_relay_cap(sv, script, 5, FAR_CAP);
}

/* Free the relay and close both customer ends. */
static void cust_close(struct relay *r, int sv[2])
{
	relay_free(r);
	conn_free(cust_conn, 0);
	close(sv[0]);
	close(sv[1]);
}

/* A greeted relay (customer script SCRIPT: greeting, EHLO reply, later replies) and one MTA
 * connection g->m that has read the customer's greeting. */
struct rig {
	int sv[2], ls, m;
	char *dir;
	struct relay *r;
};

static void rig_up_cap(struct rig *g, const char *script, bool lmtp, unsigned timeout_s, long long cap)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char got[512];

	g->dir = unit_tmpdir();
	g->r = cust_relay_cap(g->sv, script, timeout_s, cap);
	ck_assert_int_eq(relay_greet(g->r, 5), RELAY_OK);
	drain(g->sv[1], got, sizeof got);
	ck_assert_str_eq(got, "EHLO provider.test\r\n");
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/a.example", g->dir);
	g->ls = socket(AF_UNIX, SOCK_STREAM, 0);
	g->m = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(g->ls, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(g->ls, 1), 0);
	ck_assert_int_eq(relay_listen(g->r, g->ls, lmtp, "a.example"), 0);
	relay_allow_peer(g->r, getuid());
	ck_assert_int_eq(connect(g->m, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(relay_step(g->r, 2000), RELAY_OK);
	mta_read(g->m, got, sizeof got);
	ck_assert_str_eq(got, "220 customer.test ESMTP\r\n");
}

static void rig_up(struct rig *g, const char *script, bool lmtp)
{
	rig_up_cap(g, script, lmtp, 5, FAR_CAP);
}

static void rig_down(struct rig *g)
{
	relay_stop_listening(g->r);
	cust_close(g->r, g->sv);
	close(g->m);
	unit_rmtree(g->dir);
	free(g->dir);
}

#define CUST_HELLO "220 customer.test ESMTP\r\n250-customer.test\r\n250 8BITMIME\r\n"

START_TEST(test_greet_filters_extensions)
{
	struct rig g;
	char got[512];

	/* To the MTA's EHLO: the allow-listed extensions (no STARTTLS, no CHUNKING) plus our own
	 * PIPELINING, once. */
	rig_up(&g, "220 customer.test ESMTP\r\n"
		   "250-customer.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-STARTTLS\r\n"
		   "250-8BITMIME\r\n250 CHUNKING\r\n", false);
	ck_assert_int_eq(write(g.m, "EHLO mta.test\r\n", 15), 15);
	ck_assert_int_eq(relay_step(g.r, 2000), RELAY_OK);
	mta_read(g.m, got, sizeof got);
	ck_assert_str_eq(got, "250-customer.test hello\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 PIPELINING\r\n");
	ck_assert_uint_eq(relay_conns(g.r), 1);
	rig_down(&g);
}
END_TEST

START_TEST(test_greet_helo_fallback)
{
	int sv[2];
	char got[512];
	struct relay *r = cust_relay(sv, "220 old.test SMTP\r\n502 5.5.2 no EHLO here\r\n250 old.test\r\n");

	ck_assert_int_eq(relay_greet(r, 5), RELAY_OK);
	drain(sv[1], got, sizeof got);
	ck_assert_str_eq(got, "EHLO provider.test\r\nHELO provider.test\r\n");
	cust_close(r, sv);
}
END_TEST

START_TEST(test_greet_refused)
{
	int sv[2];
	struct relay *r = cust_relay(sv, "554 go away\r\n");

	ck_assert_int_eq(relay_greet(r, 5), RELAY_CUSTOMER_LOST);
	cust_close(r, sv);
}
END_TEST

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

	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", true);
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
	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", true);
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

/* A child that writes LEN octets of BUF to FD in pieces of PIECE octets, then exits. */
static pid_t writer(int fd, const char *buf, size_t len, size_t piece)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (size_t o = 0; o < len; o += piece)
			if (write(fd, buf + o, len - o < piece ? len - o : piece) < 0)
				_exit(1);
		_exit(0);
	}
	return pid;
}

START_TEST(test_data_batched_writes)
{
	struct rig g;
	size_t blen, o = 0, writes = 0;
	char *body = make_body(&blen), got[512], *cust = malloc(200000), *msg = malloc(100000);
	const char *head = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n";
	int big = 1 << 20;

	/* The MTA writes its 80 KiB in 4 KiB pieces, as Postfix does; odmrd reads at most LB_SIZE at a
	 * time. The customer must get the data in at most two writes (64 KiB, then the rest with the
	 * end of data), not one per read (seven here). */
	cust_type = SOCK_SEQPACKET;
	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", false);
	cust_type = SOCK_STREAM;
	setsockopt(g.sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	setsockopt(g.sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	memcpy(msg, head, strlen(head));
	memcpy(msg + strlen(head), body, blen);
	memcpy(msg + strlen(head) + blen, ".\r\n", 3);
	pid_t w = writer(g.m, msg, strlen(head) + blen + 3, 4096);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 40), RELAY_OK);
	ck_assert_str_eq(got, "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
	waitpid(w, NULL, 0);
	for (ssize_t n; (n = recv(g.sv[1], cust + o, 200000 - o, MSG_DONTWAIT)) > 0; o += (size_t)n)
		if (o >= strlen(head))
			writes++;
	ck_assert_uint_eq(o, strlen(head) + blen + 3);
	ck_assert_int_eq(memcmp(cust, msg, o), 0);
	ck_assert_uint_le(writes, 2);
	rig_down(&g);
	free(body);
	free(cust);
	free(msg);
}
END_TEST

START_TEST(test_customer_lost_mid_data)
{
	struct rig g;
	size_t blen;
	char *body = make_body(&blen), got[512];
	const char *head = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n";

	/* The customer goes away once the first part of the message has reached it; the MTA sends
	 * the rest half a second later. The relay says the customer is lost, and the MTA never hears
	 * an end-of-data reply (it keeps the message queued). */
	signal(SIGPIPE, SIG_IGN);
	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", false);
	pid_t cust = fork();
	ck_assert_int_ge(cust, 0);
	if (cust == 0) {
		char buf[4096], seen[8192];
		size_t o = 0;
		for (ssize_t n; (n = read(g.sv[1], buf, sizeof buf)) > 0;) {
			size_t k = (size_t)n < sizeof seen - 1 - o ? (size_t)n : sizeof seen - 1 - o;
			memcpy(seen + o, buf, k);
			o += k;
			seen[o] = '\0';
			if (strstr(seen, "DATA\r\n") && strlen(strstr(seen, "DATA\r\n")) > 6)
				_exit(0);
		}
		_exit(1);
	}
	close(g.sv[1]);
	pid_t w = fork();
	ck_assert_int_ge(w, 0);
	if (w == 0) {
		if (write(g.m, head, strlen(head)) < 0 || write(g.m, body, 30000) < 0)
			_exit(1);
		usleep(500 * 1000);
		_exit(write(g.m, body + 30000, 30000) < 0);
	}
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 10000), RELAY_CUSTOMER_LOST);
	ck_assert_str_eq(got, "250 ok\r\n250 ok\r\n354 go\r\n");
	int st;
	ck_assert_int_eq(waitpid(cust, &st, 0), cust);
	ck_assert_int_eq(st, 0);   /* it did see the start of the message */
	waitpid(w, NULL, 0);
	relay_free(g.r);
	/* Dropped without a word (a reset if the relay left some of the message unread). */
	ck_assert_int_le(read(g.m, got, sizeof got), 0);
	conn_free(cust_conn, 0);
	close(g.sv[0]);
	close(g.m);
	unit_rmtree(g.dir);
	free(g.dir);
	free(body);
}
END_TEST

START_TEST(test_malformed_command_answered)
{
	struct rig g;
	char got[512];

	/* A bare LF in a command after a good one: both answered (the batch's replies are held
	 * while lines are buffered, and the bad line's rest looks like one), then the connection
	 * is closed. */
	rig_up(&g, CUST_HELLO, false);
	ck_assert_int_eq(write(g.m, "NOOP\r\nBAD\nline\r\n", 17), 17);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 10000), RELAY_OK);
	ck_assert_str_eq(got, "250 2.0.0 OK\r\n500 5.5.2 Malformed line\r\n");
	ck_assert_uint_eq(relay_conns(g.r), 0);
	rig_down(&g);
}
END_TEST

START_TEST(test_watch_ends_the_wait)
{
	int sv[2], p[2];
	struct relay *r = cust_relay(sv, "");

	/* A queue run's end (its descriptor readable) ends relay_step's wait at once: either run's. */
	int q[2], w[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(q), 0);
	ck_assert_int_eq(write(q[1], "x", 1), 1);
	w[0] = p[0];
	w[1] = q[0];
	relay_watch(r, w, 2);
	long long t0 = net_now_ms();
	ck_assert_int_eq(relay_step(r, 5000), RELAY_OK);
	ck_assert_int_lt(net_now_ms() - t0, 2500);
	/* Not watched any more: the wait runs its course. */
	relay_watch(r, w, 0);
	t0 = net_now_ms();
	ck_assert_int_eq(relay_step(r, 300), RELAY_OK);
	ck_assert_int_ge(net_now_ms() - t0, 250);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	cust_close(r, sv);
}
END_TEST

START_TEST(test_pipelined_batch_after_refused_mail)
{
	struct rig g;
	char got[512], cust[512];
	const char *batch = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n";
	const char *want = "451 4.3.0 try later\r\n503 5.5.1 Need MAIL first\r\n503 5.5.1 Need MAIL first\r\n";

	/* A pipelined batch whose MAIL the customer refuses: RCPT and DATA are answered 503 in order
	 * by us, and only MAIL ever reaches the customer. */
	rig_up(&g, CUST_HELLO "451 4.3.0 try later\r\n", false);
	ck_assert_int_eq(write(g.m, batch, strlen(batch)), (ssize_t)strlen(batch));
	ck_assert_int_eq(steps_until(&g, got, sizeof got, strlen(want)), RELAY_OK);
	ck_assert_str_eq(got, want);
	drain_all(g.sv[1], cust, sizeof cust);
	ck_assert_str_eq(cust, "MAIL FROM:<s@x.test>\r\n");
	rig_down(&g);
}
END_TEST

START_TEST(test_rcpt_outside_socket_domain)
{
	struct rig g;
	char got[512], cust[1024];
	const char *batch = "MAIL FROM:<s@x.test>\r\nRCPT TO:<x@outside.test>\r\n"
			    "RCPT TO:<bob@a.example.com>\r\nRCPT TO:<\"v@b\"@A.Example> NOTIFY=NEVER\r\n"
			    "RCPT TO:<@relay.test:w@b.example>\r\nRCPT TO:<postmaster>\r\nDATA\r\n";
	const char *refused = "450 4.7.1 Recipient not in the domain this connection serves\r\n";
	char want[1024];

	/* Only the recipient in a.example (the socket's domain) reaches the customer; the others get
	 * a 4xx from us (the MTA keeps them queued) and LMTP's DATA gets one reply for the one. */
	snprintf(want, sizeof want, "250 ok\r\n%s%s250 ok\r\n%s%s354 go\r\n", refused, refused, refused,
		 refused);
	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", true);
	ck_assert_int_eq(write(g.m, batch, strlen(batch)), (ssize_t)strlen(batch));
	ck_assert_int_eq(write(g.m, "body\r\n.\r\n", 9), 9);
	strcat(want, "250 queued\r\n");
	ck_assert_int_eq(steps_until(&g, got, sizeof got, strlen(want)), RELAY_OK);
	ck_assert_str_eq(got, want);
	drain_all(g.sv[1], cust, sizeof cust);
	ck_assert_str_eq(cust, "MAIL FROM:<s@x.test>\r\nRCPT TO:<\"v@b\"@A.Example> NOTIFY=NEVER\r\n"
		"DATA\r\nbody\r\n.\r\n");
	rig_down(&g);
}
END_TEST

/* Connect to the socket at PATH as uid 65534 (root only: fork and drop); what the peer sent. */
static void connect_as_nobody(const char *path, char *got, size_t len)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		char buf[256] = "";
		if (strlen(path) >= sizeof sun.sun_path)
			_exit(1);
		memcpy(sun.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (setgid(65534) < 0 || setuid(65534) < 0 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
			_exit(1);
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n = poll(&pf, 1, 3000) == 1 ? read(fd, buf, sizeof buf - 1) : -2;
		dprintf(p[1], "%zd:%s", n, n > 0 ? buf : "");
		_exit(0);
	}
	close(p[1]);
	ssize_t n = 0, k;
	while ((k = read(p[0], got + n, len - 1 - (size_t)n)) > 0)
		n += k;
	got[n] = '\0';
	close(p[0]);
}

START_TEST(test_peer_not_mta_refused)
{
	struct rig g;
	char got[512], path[4200];
	int status = -1;

	/* The rig's own connection (our uid) was allowed; now only root and uid 4242 may talk. */
	rig_up(&g, CUST_HELLO, false);
	relay_allow_peer(g.r, 4242);
	snprintf(path, sizeof path, "%s/a.example", g.dir);
	if (geteuid() == 0) {
		/* nobody must reach the socket (as a local user would with a too open run_dir) */
		ck_assert_int_eq(chmod(unit_tmproot(), 0711), 0);
		ck_assert_int_eq(chmod(g.dir, 0755), 0);
		ck_assert_int_eq(chmod(path, 0666), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			char out[512];
			connect_as_nobody(path, out, sizeof out);
			_exit(strcmp(out, "0:") == 0 ? 0 : 1);   /* EOF, not the customer's greeting */
		}
		for (int i = 0; i < 40 && waitpid(pid, &status, WNOHANG) == 0; i++)
			relay_step(g.r, 100);
		chmod(unit_tmproot(), 0700);
		ck_assert_msg(status == 0, "a process of uid 65534 was not refused (status %d)", status);
	} else {
		relay_allow_peer(g.r, getuid() + 1);
		int m = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		ck_assert_uint_lt(strlen(path), sizeof sun.sun_path);
		memcpy(sun.sun_path, path, strlen(path) + 1);
		ck_assert_int_eq(connect(m, (struct sockaddr *)&sun, sizeof sun), 0);
		ck_assert_int_eq(relay_step(g.r, 1000), RELAY_OK);
		ck_assert_int_eq(read(m, got, sizeof got), 0);
		close(m);
	}
	ck_assert_uint_eq(relay_conns(g.r), 1);   /* only the rig's */
	rig_down(&g);
}
END_TEST

START_TEST(test_quiet)
{
	struct rig g;
	char got[512];

	rig_up(&g, CUST_HELLO "250 ok\r\n250 ok\r\n", false);
	ck_assert(relay_quiet(g.r));
	ck_assert_int_eq(write(g.m, "MAIL FROM:<s@x.test>\r\n", 22), 22);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 8), RELAY_OK);
	ck_assert(!relay_quiet(g.r));              /* a transaction is open */
	ck_assert_int_eq(write(g.m, "RSET\r\n", 6), 6);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 8), RELAY_OK);
	ck_assert(relay_quiet(g.r));
	rig_down(&g);
}
END_TEST

/* A child that writes TEXT to FD one octet every MS milliseconds, then exits. */
static pid_t trickle(int fd, const char *text, unsigned ms)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (const char *p = text; *p; p++) {
			usleep(ms * 1000);
			if (write(fd, p, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	return pid;
}

static void trickle_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

START_TEST(test_greeting_deadline_is_whole)
{
	int sv[2];
	/* 25 octets at one per 250 ms: 6.25 s in all, each read well inside a 1 s timeout. */
	struct relay *r = cust_relay_cap(sv, "", 1, FAR_CAP);
	pid_t t = trickle(sv[1], "220 slow.test ESMTP xyz\r\n", 250);
	long long t0 = net_now_ms();

	ck_assert_int_eq(relay_greet(r, 1), RELAY_CUSTOMER_LOST);
	long long took = net_now_ms() - t0;
	ck_assert_int_ge(took, 900);
	ck_assert_int_lt(took, 2000);   /* per-read deadlines let it run the whole 6.25 s */
	ck_assert(!relay_expired(r));
	trickle_stop(t);
	cust_close(r, sv);
}
END_TEST

START_TEST(test_reply_deadline_is_whole)
{
	struct rig g;
	char got[512], cust[512];

	/* A customer reply to MAIL trickled past the reply deadline (timeout_s 1): the session is
	 * lost after ~1 s and the MTA gets no answer (its connection is dropped). */
	rig_up_cap(&g, CUST_HELLO, false, 1, FAR_CAP);
	ck_assert_int_eq(write(g.m, "MAIL FROM:<s@x.test>\r\n", 22), 22);
	pid_t t = trickle(g.sv[1], "250 2.1.0 sender ok, go ahead\r\n", 200);
	long long t0 = net_now_ms();
	enum relay_rc rc = RELAY_OK;
	for (int i = 0; i < 50 && rc == RELAY_OK; i++)
		rc = relay_step(g.r, 100);
	long long took = net_now_ms() - t0;
	ck_assert_int_eq(rc, RELAY_CUSTOMER_LOST);
	ck_assert_int_lt(took, 2000);
	drain_all(g.m, got, sizeof got);
	ck_assert_str_eq(got, "");
	trickle_stop(t);
	drain_all(g.sv[1], cust, sizeof cust);
	ck_assert_str_eq(cust, "MAIL FROM:<s@x.test>\r\n");
	rig_down(&g);
}
END_TEST

START_TEST(test_max_session_time)
{
	struct rig g;
	char got[512], cust[512];

	/* Every reply within its own deadline (5 s), but the whole reversed state is capped at
	 * 1.5 s: the MTA's open transaction is dropped unanswered, the customer gets nothing after
	 * the command in flight (no RSET, no QUIT). */
	rig_up_cap(&g, CUST_HELLO "250 ok\r\n", false, 5, net_now_ms() + 1500);
	ck_assert_int_eq(write(g.m, "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\n", 45), 45);
	pid_t t = trickle(g.sv[1], "250 2.1.5 recipient ok\r\n", 300);
	enum relay_rc rc = RELAY_OK;
	for (int i = 0; i < 100 && rc == RELAY_OK; i++)
		rc = relay_step(g.r, 100);
	ck_assert_int_eq(rc, RELAY_EXPIRED);
	ck_assert(relay_expired(g.r));
	ck_assert_int_eq(relay_step(g.r, 100), RELAY_EXPIRED);
	drain_all(g.m, got, sizeof got);
	/* Nothing: MAIL's answer waited to leave with the rest of its pipelined batch (RCPT's). */
	ck_assert_str_eq(got, "");
	trickle_stop(t);
	relay_free(g.r);
	g.r = NULL;
	ssize_t n = read(g.m, got, sizeof got);   /* dropped without a word */
	ck_assert_int_eq(n, 0);
	drain_all(g.sv[1], cust, sizeof cust);
	ck_assert_str_eq(cust, "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\n");
	conn_free(cust_conn, 0);
	close(g.sv[0]);
	close(g.sv[1]);
	close(g.m);
	unit_rmtree(g.dir);
	free(g.dir);
}
END_TEST

/* Send this process's log lines to a file in DIR (after rig_up: its own lines are not wanted). */
static void log_to(const char *dir, char *path, size_t len)
{
	snprintf(path, len, "%s/odmrd.log", dir);
	unlink(path);
	ck_assert_int_eq(log_open(LOG_MAIL, path), 0);
}

/* The " msg " lines logged to PATH, in BUF (one per line); how many there are. */
static int msg_lines(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t o = 0;
	int n = 0;

	ck_assert_ptr_nonnull(f);
	buf[0] = '\0';
	while (fgets(line, sizeof line, f) != NULL) {
		char *m = strstr(line, "]: msg ");
		if (m == NULL)
			continue;
		ck_assert_uint_lt(o + strlen(m + 3), len);
		o += (size_t)sprintf(buf + o, "%s", m + 3);
		n++;
	}
	fclose(f);
	log_close();
	ck_assert_int_eq(log_open(LOG_MAIL, "/dev/null"), 0);
	return n;
}

START_TEST(test_msg_line_lmtp)
{
	struct rig g;
	size_t blen, dots = 0;
	char *body = make_body(&blen), got[1024], path[4200], log[8192], want[2048];
	const char *head = "MAIL FROM:<s\x01\xc3\xa9@x.test> BODY=8BITMIME\r\nRCPT TO:<u@a.example>\r\n"
			   "RCPT TO:<v@a.example>\r\nRCPT TO:<x@outside.test>\r\nRCPT TO:<\"w w\"@a.example>\r\n"
			   "DATA\r\n";
	const char *fin = "250-2.0.0 Ok: queued as ABC\r\n250 2.0.0 \"bye\"\r\n";

	/* LMTP: the customer refuses v@, we refuse x@outside.test, two accepted; one line, after
	 * the end of data, with the message size as the customer stores it (stuffing dots not
	 * counted), and the two-line final reply joined. */
	for (size_t i = 0; i + 1 < blen; i++)
		dots += (i == 0 || body[i - 1] == '\n') && body[i] == '.' && body[i + 1] == '.';
	ck_assert_uint_gt(dots, 100);
	snprintf(want, sizeof want, CUST_HELLO "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n"
		 "354 go\r\n%s", fin);
	rig_up(&g, want, true);
	relay_set_user(g.r, "alice@provider.test");
	log_to(g.dir, path, sizeof path);
	ck_assert_int_eq(write(g.m, head, strlen(head)), (ssize_t)strlen(head));
	ck_assert_int_eq(write(g.m, body, blen), (ssize_t)blen);
	ck_assert_int_eq(write(g.m, ".\r\nQUIT\r\n", 9), 9);
	snprintf(want, sizeof want, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n"
		 "450 4.7.1 Recipient not in the domain this connection serves\r\n250 ok\r\n354 go\r\n"
		 "%s%s221 2.0.0 Bye\r\n", fin, fin);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, strlen(want)), RELAY_OK);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(msg_lines(path, log, sizeof log), 1);
	snprintf(want, sizeof want, "msg user=alice@provider.test domain=a.example mta_pid=%ld "
		 "from=<s\\x01\\xc3\\xa9@x.test> size=%zu rcpts=4 accepted=<u@a.example>,<\\x22w\\x20w\\x22@a.example> "
		 "refused=<v@a.example>:550,<x@outside.test>:450-odmrd result=sent "
		 "reply=\"250 2.0.0 Ok: queued as ABC 2.0.0 \\x22bye\\x22\"\n", (long)getpid(), blen - dots);
	ck_assert_str_eq(log, want);
	rig_down(&g);
	free(body);
}
END_TEST

START_TEST(test_msg_line_many_rcpts_rset)
{
	struct rig g;
	char script[8192], batch[8192], got[8192], path[4200], log[8192];
	size_t o = 0, k = 0;

	/* 60 long recipients, all accepted, then RSET: the list stops with a count of the rest,
	 * the line stays well inside log.c's 2048 octets, and says the transaction was dropped. */
	o = (size_t)snprintf(script, sizeof script, "%s250 ok\r\n", CUST_HELLO);
	k = (size_t)snprintf(batch, sizeof batch, "MAIL FROM:<>\r\n");
	for (int i = 0; i < 60; i++) {
		o += (size_t)snprintf(script + o, sizeof script - o, "250 ok\r\n");
		k += (size_t)snprintf(batch + k, sizeof batch - k,
				      "RCPT TO:<recipient.number.%02d.with.a.long.name@a.example>\r\n", i);
	}
	snprintf(script + o, sizeof script - o, "250 reset\r\n");
	snprintf(batch + k, sizeof batch - k, "RSET\r\n");
	rig_up(&g, script, false);
	log_to(g.dir, path, sizeof path);
	ck_assert_int_eq(write(g.m, batch, strlen(batch)), (ssize_t)strlen(batch));
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 8 * 61 + 11), RELAY_OK);
	ck_assert_int_eq(msg_lines(path, log, sizeof log), 1);
	ck_assert_uint_lt(strlen(log), 1024);
	ck_assert_ptr_nonnull(strstr(log, "msg user=- domain=a.example "));
	ck_assert_ptr_nonnull(strstr(log, " from=<> size=- rcpts=60 accepted=<recipient.number.00.with.a.long.name@a.example>,"));
	ck_assert_ptr_nonnull(strstr(log, "-more refused=- result=dropped reason=mta-rset reply=-\n"));
	unsigned listed = 0, more = 0;
	for (const char *p = log; (p = strstr(p, "<recipient.")) != NULL; p++)
		listed++;
	ck_assert_int_eq(sscanf(strstr(log, ",+"), ",+%u-more", &more), 1);
	ck_assert_uint_eq(listed + more, 60);
	ck_assert_uint_ge(listed, 5);
	rig_down(&g);
}
END_TEST

START_TEST(test_msg_line_customer_lost)
{
	struct rig g;
	char got[512], path[4200], log[4096], want[512];
	const char *batch = "MAIL FROM:<s@x.test>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n";

	/* The customer never gives its end-of-data reply (timeout_s 1): no verdict, the line says
	 * why, with the size relayed (".." un-stuffed: "..x\r\n" is 4 octets of message). */
	rig_up_cap(&g, CUST_HELLO "250 ok\r\n250 ok\r\n354 go\r\n", false, 1, FAR_CAP);
	log_to(g.dir, path, sizeof path);
	ck_assert_int_eq(write(g.m, batch, strlen(batch)), (ssize_t)strlen(batch));
	ck_assert_int_eq(write(g.m, "..x\r\n.\r\n", 8), 8);
	ck_assert_int_eq(steps_until(&g, got, sizeof got, 10000), RELAY_CUSTOMER_LOST);
	ck_assert_str_eq(got, "250 ok\r\n250 ok\r\n354 go\r\n");
	relay_free(g.r);   /* the MTA connection is dropped unanswered: now the line */
	g.r = relay_new(cust_conn, "provider.test", 5, FAR_CAP);   /* for rig_down */
	ck_assert_int_eq(msg_lines(path, log, sizeof log), 1);
	snprintf(want, sizeof want, "msg user=- domain=a.example mta_pid=%ld from=<s@x.test> size=4 rcpts=1 "
		 "accepted=<u@a.example> refused=- result=dropped reason=customer-lost reply=-\n", (long)getpid());
	ck_assert_str_eq(log, want);
	rig_down(&g);
}
END_TEST

START_TEST(test_mta_lost_after_mail_rsets_customer)
{
	struct rig g;
	char cust[512], path[4200], log[4096];

	/* The MTA sends MAIL and vanishes before it hears the customer's 250: the customer's
	 * transaction is ended with RSET, so the next MTA connection's MAIL is not a nested one. */
	signal(SIGPIPE, SIG_IGN);
	rig_up(&g, CUST_HELLO "250 ok\r\n250 reset\r\n", false);
	log_to(g.dir, path, sizeof path);
	ck_assert_int_eq(write(g.m, "MAIL FROM:<s@x.test>\r\n", 22), 22);
	close(g.m);
	g.m = -1;
	for (int i = 0; i < 20 && relay_conns(g.r) > 0; i++)
		ck_assert_int_eq(relay_step(g.r, 100), RELAY_OK);
	ck_assert_uint_eq(relay_conns(g.r), 0);
	drain_all(g.sv[1], cust, sizeof cust);
	ck_assert_str_eq(cust, "MAIL FROM:<s@x.test>\r\nRSET\r\n");
	ck_assert_int_eq(msg_lines(path, log, sizeof log), 1);
	ck_assert_ptr_nonnull(strstr(log, " result=dropped reason=mta-lost reply=-\n"));
	rig_down(&g);
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
	tcase_add_test(tc, test_data_batched_writes);
	tcase_add_test(tc, test_customer_lost_mid_data);
	tcase_add_test(tc, test_malformed_command_answered);
	tcase_add_test(tc, test_watch_ends_the_wait);
	tcase_add_test(tc, test_pipelined_batch_after_refused_mail);
	tcase_add_test(tc, test_rcpt_outside_socket_domain);
	tcase_add_test(tc, test_peer_not_mta_refused);
	tcase_add_test(tc, test_quiet);
	tcase_add_test(tc, test_greeting_deadline_is_whole);
	tcase_add_test(tc, test_reply_deadline_is_whole);
	tcase_add_test(tc, test_max_session_time);
	tcase_add_test(tc, test_msg_line_lmtp);
	tcase_add_test(tc, test_msg_line_many_rcpts_rset);
	tcase_add_test(tc, test_msg_line_customer_lost);
	tcase_add_test(tc, test_mta_lost_after_mail_rsets_customer);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
