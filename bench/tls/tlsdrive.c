/*
 * tlsdrive.c - run one server process per "connection" the way inetd does and measure its CPU.
 *
 *   tlsdrive N init|hs 1.2|1.3 SERVER [ARG...]
 *
 * For each of N rounds: a socketpair, fork + exec SERVER ARG... with its end on fd 0 and 1, and
 * (mode hs) a TLS client here (OpenSSL, no verification, no session reuse: the client is the same
 * for every server) that completes the handshake at the given version and reads the server's
 * "ok\n". The server's user+system CPU comes from wait4(). Prints one line:
 *   n=N cpu_ms_mean=X cpu_ms_median=Y wall_ms_mean=Z failures=F
 * The client's own CPU is not counted (it is the same for every candidate).
 */
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: tlsdrive N init|hs 1.2|1.3 SERVER [ARG...]\n");
		return 2;
	}
	int n = atoi(argv[1]), hs = !strcmp(argv[2], "hs"), fails = 0;
	int ver = !strcmp(argv[3], "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
	double *cpu = calloc((size_t)n, sizeof *cpu), wall = 0, sum = 0;
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_min_proto_version(cctx, ver);
	SSL_CTX_set_max_proto_version(cctx, ver);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
	for (int i = 0; i < n; i++) {
		int sv[2];
		struct rusage ru;
		int st;
		double t0 = now_ms();

		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		pid_t pid = fork();
		if (pid == 0) {
			dup2(sv[1], 0);
			dup2(sv[1], 1);
			close(sv[0]);
			close(sv[1]);
			execv(argv[4], argv + 4);
			_exit(127);
		}
		close(sv[1]);
		if (hs) {
			SSL *s = SSL_new(cctx);
			char buf[8];
			SSL_set_fd(s, sv[0]);
			/* ok, then the server's close_notify (0): it has finished before we close. */
			if (SSL_connect(s) != 1 || SSL_read(s, buf, sizeof buf) != 3 || memcmp(buf, "ok\n", 3) ||
			    SSL_read(s, buf, sizeof buf) != 0)
				fails++;
			SSL_free(s);
		}
		close(sv[0]);
		wait4(pid, &st, 0, &ru);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fails++;
		wall += now_ms() - t0;
		cpu[i] = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
			 ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
		sum += cpu[i];
	}
	qsort(cpu, (size_t)n, sizeof *cpu, cmp);
	printf("n=%d cpu_ms_mean=%.3f cpu_ms_median=%.3f wall_ms_mean=%.3f failures=%d\n", n, sum / n,
	       cpu[n / 2], wall / n, fails);
	return fails != 0;
}
