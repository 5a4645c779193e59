/*
 * sink.c - fast SMTP sink for the throughput benchmark (C, single-threaded poll loop).
 *
 * Speaks the same SMTP dialect as tests/lib/smtpsink.py (EHLO reply 250 sink.test, 8BITMIME,
 * SIZE 10240000, ENHANCEDSTATUSCODES, NO PIPELINING, one command at a time) but discards message
 * data instead of writing one file per message, so the sink is not what limits the comparison.
 *
 * usage: sink -p PORTFILE -o CSV -n EXPECT [-q] [-U SOCKET]
 *        sink -C PORT -o CSV -n EXPECT [-u USER -w PASS -d DOMAINS]
 *   -q: re-arm TCP_QUICKACK after every read, so the sink ACKs at once instead of delaying the ACK
 *       (Linux delayed ACK, >= 40 ms): shows whether a sender's Nagle wait is what limits the rate.
 *   Listens on 127.0.0.1:0, writes the port to PORTFILE. For every accepted message it records
 *   the wall-clock time (µs since the epoch) and the data size; when EXPECT messages have been
 *   stored (and again on SIGTERM) it writes CSV (msg,t_us,bytes) atomically. Exits on SIGTERM.
 *   -U: listen on the unix socket SOCKET instead (for Sendmail's [IPC] mailer; the path is
 *       created mode 0666 and removed at exit); the port file then holds 0.
 *   -C: a C ODMR customer instead of a listener: connect to 127.0.0.1:PORT, EHLO, AUTH CRAM-MD5
 *       (bench/bclient.c), ATRN DOMAINS (default a.example), and on 250 act as the SMTP server on
 *       that connection (greeting first, RFC 2645 5.3); exits when the provider closes. Stands in
 *       for fetchmail so the throughput runs can separate odmrd's share from fetchmail's.
 *       Exit status 0 only if ATRN got 250.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bclient.h"

#define MAXC 128
#define MAXMSG 200000

struct sc {
	int fd;
	int data;           /* in DATA */
	int st;             /* matched prefix of "\r\n.\r\n" */
	long long bytes;
	char line[4096];
	size_t ll;
};

static volatile sig_atomic_t stop;
static long long *t_us, *sz;
static int stored, expect;
static const char *csv;
static int quickack;

static void on_term(int s) { (void)s; stop = 1; }

static long long wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void dump(void)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", csv);
	FILE *fp = fopen(tmp, "w");
	if (!fp)
		return;
	fprintf(fp, "msg,t_us,bytes\n");
	for (int i = 0; i < stored; i++)
		fprintf(fp, "%d,%lld,%lld\n", i + 1, t_us[i], sz[i]);
	fclose(fp);
	rename(tmp, csv);
}

static int say(struct sc *c, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(c->fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Returns -1 to close. */
static int command(struct sc *c, char *line)
{
	char verb[8] = "";
	size_t n = strcspn(line, " \r\n");
	if (n < sizeof verb)
		memcpy(verb, line, n), verb[n] = '\0';
	if (!strcasecmp(verb, "EHLO"))
		return say(c, "250-sink.test\r\n250-8BITMIME\r\n250-SIZE 10240000\r\n250 ENHANCEDSTATUSCODES\r\n");
	if (!strcasecmp(verb, "HELO"))
		return say(c, "250 sink.test\r\n");
	if (!strcasecmp(verb, "MAIL"))
		return say(c, "250 2.1.0 Ok\r\n");
	if (!strcasecmp(verb, "RCPT"))
		return say(c, "250 2.1.5 Ok\r\n");
	if (!strcasecmp(verb, "DATA")) {
		c->data = 1;
		c->st = 2;
		c->bytes = 0;
		return say(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
	}
	if (!strcasecmp(verb, "RSET") || !strcasecmp(verb, "NOOP"))
		return say(c, "250 2.0.0 Ok\r\n");
	if (!strcasecmp(verb, "QUIT")) {
		say(c, "221 2.0.0 Bye\r\n");
		return -1;
	}
	return say(c, "500 5.5.2 Command not recognized\r\n");
}

/* Feed N bytes; -1 to close. */
static int feed(struct sc *c, const char *p, size_t n)
{
	static const char pat[] = "\r\n.\r\n";
	size_t i = 0;
	while (i < n) {
		if (c->data) {
			for (; i < n; i++) {
				char b = p[i];
				if (b == pat[c->st])
					c->st++;
				else
					c->st = b == '\r' ? 1 : 0;
				c->bytes++;
				if (c->st == 5) {
					i++;
					c->data = 0;
					if (stored < MAXMSG) {
						t_us[stored] = wall_us();
						sz[stored] = c->bytes;
						stored++;
					}
					if (stored == expect)
						dump();
					if (say(c, "250 2.0.0 Ok: queued\r\n") < 0)
						return -1;
					break;
				}
			}
			continue;
		}
		char b = p[i++];
		if (c->ll < sizeof c->line - 1)
			c->line[c->ll++] = b;
		if (b == '\n') {
			c->line[c->ll] = '\0';
			c->ll = 0;
			if (command(c, c->line) < 0)
				return -1;
		}
	}
	return 0;
}

/* Customer mode: log in to odmrd at 127.0.0.1:PORT and ask for DOMAINS; the socket, or -1. */
static int customer(int port, const char *user, const char *pass, const char *domains)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	struct bc_conn *c = calloc(1, sizeof *c);
	char cmd[1024];
	int fd = socket(AF_INET, SOCK_STREAM, 0), code;

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (fd < 0 || !c || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		perror("sink -C: connect");
		return -1;
	}
	c->in = c->out = fd;
	c->timeout_ms = 60000;
	snprintf(cmd, sizeof cmd, "ATRN %s\r\n", domains);
	if ((code = bc_login(c, user, pass)) != 235 || bc_write(c, cmd) < 0 || (code = bc_reply(c, NULL, 0)) != 250) {
		fprintf(stderr, "sink -C: login/ATRN failed: %d\n", code);
		close(fd);
		free(c);
		return -1;
	}
	if (c->len > 0) {   /* the provider must wait for our greeting */
		fprintf(stderr, "sink -C: provider spoke before the greeting\n");
		close(fd);
		free(c);
		return -1;
	}
	free(c);
	return fd;
}

/* The listening socket: TCP on 127.0.0.1 (port written to PORTFILE) or the unix socket UPATH. */
static int listener(const char *portfile, const char *upath)
{
	int ls, one = 1, port = 0;

	if (upath) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(upath) >= sizeof sun.sun_path)
			return -1;
		strcpy(sun.sun_path, upath);
		unlink(upath);
		ls = socket(AF_UNIX, SOCK_STREAM, 0);
		if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(upath, 0666) < 0 ||
		    listen(ls, 64) < 0)
			return -1;
	} else {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof sin;
		inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
		ls = socket(AF_INET, SOCK_STREAM, 0);
		if (ls < 0)
			return -1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 64) < 0 ||
		    getsockname(ls, (struct sockaddr *)&sin, &sl) < 0)
			return -1;
		port = ntohs(sin.sin_port);
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
	FILE *fp = fopen(tmp, "w");
	if (!fp)
		return -1;
	fprintf(fp, "%d\n", port);
	fclose(fp);
	rename(tmp, portfile);
	return ls;
}

int main(int argc, char **argv)
{
	const char *portfile = NULL, *upath = NULL, *user = "alice", *pass = "secret", *domains = "a.example";
	int opt, cport = 0;
	while ((opt = getopt(argc, argv, "p:o:n:qU:C:u:w:d:")) != -1) {
		if (opt == 'q') quickack = 1;
		else if (opt == 'p') portfile = optarg;
		else if (opt == 'o') csv = optarg;
		else if (opt == 'n') expect = atoi(optarg);
		else if (opt == 'U') upath = optarg;
		else if (opt == 'C') cport = atoi(optarg);
		else if (opt == 'u') user = optarg;
		else if (opt == 'w') pass = optarg;
		else if (opt == 'd') domains = optarg;
		else return 2;
	}
	if ((!portfile && !cport) || !csv)
		return 2;
	t_us = calloc(MAXMSG, sizeof *t_us);
	sz = calloc(MAXMSG, sizeof *sz);
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sc *cs[MAXC];
	int nc = 0, ls = -1;
	if (cport) {
		int fd = customer(cport, user, pass, domains);
		if (fd < 0)
			return 1;
		cs[nc] = calloc(1, sizeof **cs);
		cs[nc]->fd = fd;
		say(cs[nc++], "220 sink.test ESMTP ready\r\n");
	} else if ((ls = listener(portfile, upath)) < 0) {
		perror("sink: listen");
		return 1;
	}
	static char buf[256 * 1024];
	while (!stop && (ls >= 0 || nc > 0)) {
		struct pollfd p[MAXC + 1];
		p[0] = (struct pollfd){ .fd = ls, .events = POLLIN };   /* fd -1 (customer mode): ignored */
		for (int i = 0; i < nc; i++)
			p[i + 1] = (struct pollfd){ .fd = cs[i]->fd, .events = POLLIN };
		int r = poll(p, (nfds_t)nc + 1, 500);
		if (r <= 0)
			continue;
		for (int i = nc - 1; i >= 0; i--) {
			if (!p[i + 1].revents)
				continue;
			ssize_t n = read(cs[i]->fd, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (quickack) {
				int one = 1;
				setsockopt(cs[i]->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
			}
			if (n <= 0 || feed(cs[i], buf, (size_t)n) < 0) {
				close(cs[i]->fd);
				free(cs[i]);
				cs[i] = cs[--nc];
			}
		}
		if ((p[0].revents & POLLIN) && nc < MAXC) {
			int fd = accept(ls, NULL, NULL);
			if (fd >= 0) {
				struct sc *c = calloc(1, sizeof *c);
				c->fd = fd;
				cs[nc++] = c;
				say(c, "220 sink.test ESMTP ready\r\n");
			}
		}
	}
	dump();
	if (upath)
		unlink(upath);
	return 0;
}
