/*
 * relay5m.c - what TLS costs odmrd in the reversed state: one 5 MB message relayed from an MTA
 * connection to the customer, through odmrd's own relay.c and conn.c (and the TLS module).
 *
 *   relay5m plain|tls-lines|tls-blocks MODULE.so CERT KEY [MB]
 *
 * plain: no TLS. tls-lines: TLS with one record per line, as odmrd sends it (fetchmail --ssl needs
 * that). tls-blocks: TLS with records as large as the writes (what odmrd would do without the
 * fetchmail quirk) - for comparison only. Three processes: this one runs the relay (measured);
 * a forked "customer" (OpenSSL client over a socketpair, an SMTP server that swallows DATA) and a
 * forked "MTA" (LMTP client on a unix socket sending MAIL, RCPT, DATA of MB megabytes of 76-octet
 * lines). Prints: mode, relay CPU ms (user+sys, from the 220 to the end), wall ms, MB/s, octets
 * the customer received (TLS overhead included).
 */
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "net.h"
#include "relay.h"
#include "tls.h"

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
	       ru.ru_stime.tv_usec / 1e3;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	static unsigned char buf[2][65536];
	static int k;
	if (f == NULL)
		exit(2);
	*len = fread(buf[k], 1, sizeof buf[k], f);
	fclose(f);
	return buf[k++];
}

/* The customer: an SMTP server over TLS (or plain) that counts what it receives. */
static void customer(int fd, int tls)
{
	SSL *s = NULL;
	char line[4096];
	size_t got = 0, n = 0;
	long long total = 0;

	if (tls) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		s = SSL_new(ctx);
		SSL_set_fd(s, fd);
		if (SSL_connect(s) != 1)
			_exit(3);
	}
#define SEND(t) (tls ? SSL_write(s, t, (int)strlen(t)) : write(fd, t, strlen(t)))
	SEND("220 customer ESMTP\r\n");
	int indata = 0;
	char in[65536];
	size_t have = 0, pos = 0;
	for (;;) {
		if (pos == have) {
			int r = tls ? SSL_read(s, in, sizeof in) : (int)read(fd, in, sizeof in);
			if (r <= 0)
				break;
			have = (size_t)r;
			pos = 0;
			total += r;
		}
		char c = in[pos++];
		if (n < sizeof line - 1)
			line[n++] = c;
		if (c != '\n')
			continue;
		line[n] = '\0';
		n = 0;
		got++;
		if (indata) {
			if (!strcmp(line, ".\r\n")) {
				indata = 0;
				SEND("250 ok\r\n");
			}
			continue;
		}
		if (!strncmp(line, "EHLO", 4))
			SEND("250 customer\r\n");
		else if (!strncmp(line, "DATA", 4)) {
			indata = 1;
			SEND("354 go\r\n");
		} else if (!strncmp(line, "QUIT", 4)) {
			SEND("221 bye\r\n");
			break;
		} else
			SEND("250 ok\r\n");
	}
	fprintf(stderr, "customer: %lld octets of plaintext received\n", total);
	_exit(0);
}

/* The MTA: LHLO, MAIL, RCPT, DATA with MB megabytes, QUIT. */
static void mta(const char *path, int mb)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char buf[65536];
	FILE *f;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	while (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		usleep(1000);
	f = fdopen(fd, "r+");
	setvbuf(f, NULL, _IOFBF, sizeof buf);
#define REPLY() do { while (fgets(buf, sizeof buf, f) && buf[3] == '-') ; } while (0)
	REPLY();
	fputs("LHLO mta\r\n", f); fflush(f); REPLY();
	fputs("MAIL FROM:<s@x.test>\r\n", f); fflush(f); REPLY();
	fputs("RCPT TO:<u@a.example>\r\n", f); fflush(f); REPLY();
	fputs("DATA\r\n", f); fflush(f); REPLY();
	for (long n = 0, i = 0; n < (long)mb * 1024 * 1024; i++) {
		int k = fprintf(f, "%07ld abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/abcdef\r\n", i);
		n += k;
	}
	fputs(".\r\n", f); fflush(f); REPLY();
	fputs("QUIT\r\n", f); fflush(f); REPLY();
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: relay5m plain|tls-lines|tls-blocks MODULE CERT KEY [MB]\n");
		return 2;
	}
	int tls = strcmp(argv[1], "plain") != 0, lines = !strcmp(argv[1], "tls-lines");
	int mb = argc > 5 ? atoi(argv[5]) : 5, sv[2];
	char path[] = "/tmp/relay5m.XXXXXX";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	signal(SIGPIPE, SIG_IGN);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (fork() == 0) {
		close(sv[0]);
		customer(sv[1], tls);
	}
	close(sv[1]);
	struct conn *c = conn_new(sv[0], sv[0]);
	if (tls) {
		void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
		const struct tls_ops *ops = h ? dlsym(h, TLS_SYMBOL) : NULL;
		struct tls_cfg cfg = { 0 };
		char err[256];
		cfg.cert.data = slurp(argv[3], &cfg.cert.len);
		cfg.key.data = slurp(argv[4], &cfg.key.len);
		if (ops == NULL || conn_tls_prepare(c, ops, &cfg, err, sizeof err) < 0 ||
		    conn_starttls(c, net_now_ms() + 10000, err, sizeof err) < 0) {
			fprintf(stderr, "TLS: %s\n", ops ? err : dlerror());
			return 1;
		}
	}
	mkdtemp(path);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/a.example", path);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	bind(ls, (struct sockaddr *)&sun, sizeof sun);
	listen(ls, 4);
	if (fork() == 0)
		mta(sun.sun_path, mb);
	double c0 = cpu_ms();
	long long t0 = net_now_ms();
	struct relay *r = relay_new(c, "provider.test", 60, net_now_ms() + 600000);
	if (!lines)
		conn_set_line_records(c, false);
	enum relay_rc rc = relay_greet(r, 10);
	relay_allow_peer(r, getuid());
	relay_listen(r, ls, true, "a.example");
	struct ho_stats st;
	int seen = 0;
	while (rc == RELAY_OK) {
		rc = relay_step(r, 100);
		relay_stats(r, &st);
		if (st.mta_conns > 0)
			seen = 1;
		if (seen && relay_conns(r) == 0)
			break;
	}
	relay_quit(r);
	relay_free(r);
	conn_free(c, net_now_ms() + 1000);
	double cpu = cpu_ms() - c0;
	long long wall = net_now_ms() - t0;
	while (wait(NULL) > 0)
		;
	unlink(sun.sun_path);
	rmdir(path);
	printf("mode=%s mb=%d relay_cpu_ms=%.1f wall_ms=%lld MB/s=%.1f messages=%u rc=%d\n", argv[1], mb, cpu,
	       wall, wall ? mb * 1000.0 / wall : 0, st.messages, rc);
	return st.messages == 1 ? 0 : 1;
}
