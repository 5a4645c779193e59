/*
 * sink.c - fast SMTP sink for the throughput benchmark (C, single-threaded poll loop).
 *
 * Speaks the same SMTP dialect as tests/lib/smtpsink.py (EHLO reply 250 sink.test, 8BITMIME,
 * SIZE 10240000, ENHANCEDSTATUSCODES, NO PIPELINING, one command at a time) but discards message
 * data instead of writing one file per message, so the sink is not what limits the comparison.
 *
 * usage: sink -p PORTFILE -o CSV -n EXPECT [-q]
 *   -q: re-arm TCP_QUICKACK after every read, so the sink ACKs at once instead of delaying the ACK
 *       (Linux delayed ACK, >= 40 ms): shows whether a sender's Nagle wait is what limits the rate.
 *   Listens on 127.0.0.1:0, writes the port to PORTFILE. For every accepted message it records
 *   the wall-clock time (µs since the epoch) and the data size; when EXPECT messages have been
 *   stored (and again on SIGTERM) it writes CSV (msg,t_us,bytes) atomically. Exits on SIGTERM.
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
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	const char *portfile = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "p:o:n:q")) != -1) {
		if (opt == 'q') quickack = 1;
		else if (opt == 'p') portfile = optarg;
		else if (opt == 'o') csv = optarg;
		else if (opt == 'n') expect = atoi(optarg);
		else return 2;
	}
	if (!portfile || !csv)
		return 2;
	t_us = calloc(MAXMSG, sizeof *t_us);
	sz = calloc(MAXMSG, sizeof *sz);
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	socklen_t sl = sizeof sin;
	if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 64) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sin, &sl) < 0)
		return 1;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
	FILE *fp = fopen(tmp, "w");
	fprintf(fp, "%d\n", ntohs(sin.sin_port));
	fclose(fp);
	rename(tmp, portfile);

	struct sc *cs[MAXC];
	int nc = 0;
	static char buf[256 * 1024];
	while (!stop) {
		struct pollfd p[MAXC + 1];
		p[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
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
	return 0;
}
