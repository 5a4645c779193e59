/*
 * hsclient.c - handshake benchmark client for odmrd (ODMR) and an SMTP AUTH server (Postfix smtpd).
 *
 * One handshake:  connect -> 220 -> EHLO -> 250 -> AUTH CRAM-MD5 -> 334 -> response -> 235
 *                 [odmr mode: -> ATRN DOMAIN -> reply]   <- latency measured up to here
 *                 -> QUIT -> 221 -> wait for the server's EOF -> close (not timed)
 * The customer's side of the dialogue is bench/bclient.c (CRAM-MD5 via libcrypto: libssl-dev).
 *
 * usage: hsclient -p PORT -m odmr|smtp -u USER -w PASS [-d DOMAIN] [-e CODE] [-n N] [-c CONC]
 *                 [-o CSV] [-R READYFILE -G GOFILE] [-T [-r]] [-x -- COMMAND ARGS...]
 *   -T        STARTTLS after the first EHLO (then EHLO again): the TLS handshake is timed too
 *   -r        with -T: offer each thread's previous session (resumption); the first is full
 *   -n N      total handshakes (default 100), shared by -c CONC threads (default 1)
 *   -e CODE   expected final code (odmr: ATRN reply, default 450; smtp: 235)
 *   -o CSV    one line per handshake: thread,seq,start_us,latency_us,code
 *   -R/-G     hold mode: every thread does ONE handshake up to 235 and stops; when all CONC are
 *             there READYFILE is created; they continue (ATRN/QUIT) once GOFILE exists.
 *   -x        no TCP: socketpair, fork+exec COMMAND with the other end on fd 0/1 (e.g. valgrind
 *             odmrd), run one handshake over it, wait for COMMAND; exit status 0 if all went well.
 *             With -n N: N such sessions one after the other; prints COMMAND's CPU per session
 *             (getrusage of the reaped children: exec, dynamic linking, session, exit; no inetd);
 *             with -T -r the later ones resume the previous session.
 * Prints one summary line: n= ok= err= wall_s= rate_per_s= p50_ms= p90_ms= p99_ms= min_ms= max_ms=
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bclient.h"

static const char *host = "127.0.0.1", *user = "alice", *pass = "secret", *domain = "b.example";
static int port, mode_odmr = 1, expect = -1, conc = 1, total = 100;
static const char *csv_path, *ready_file, *go_file;
static char **exec_argv;
static int exec_n;  /* -x with -n: sessions to run (0: one, old output) */
static atomic_int next_seq, n_ok, n_err, n_held;
static int io_timeout_ms = 20000;
static int use_tls, use_resume;
static SSL_CTX *tls_ctx;
static atomic_int n_resumed;

struct rec { int thread, seq; long long start_us, lat_us; int code; };
static struct rec *recs;

/* Hold mode: threads park on a condition variable; main() polls for GOFILE and releases them. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_go;
/* Hold mode ramps up: at most HOLD_RAMP connections between connect and 235 at a time, so a burst
 * of CONC connects does not overflow the server's listen backlog (SYN retries of 1 s, 3 s, ...). */
#define HOLD_RAMP 16
static sem_t ramp;
static __thread int arrived;

static void hold_arrive(void)
{
	sem_post(&ramp);
	arrived = 1;
	if (atomic_fetch_add(&n_held, 1) + 1 == conc) {
		int fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_lock(&hold_mu);
	while (!hold_go)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
}

/* One handshake on an open connection; returns the final code (or -1). LAT gets the timed part. */
static int handshake(struct bc_conn *c, long long t0, long long *lat, int hold)
{
	char cmd[2048];
	int code;

	c->timeout_ms = io_timeout_ms;
	if ((code = bc_login(c, user, pass)) != 235)
		return code;
	if (mode_odmr) {
		if (hold) {
			hold_arrive();
			t0 = bc_now_us();
		}
		snprintf(cmd, sizeof cmd, "ATRN %s\r\n", domain);
		if (bc_write(c, cmd) < 0)
			return -5;
		code = bc_reply(c, NULL, 0);
	} else if (hold) {
		hold_arrive();
	}
	*lat = bc_now_us() - t0;
	if (bc_write(c, "QUIT\r\n") == 0 && bc_reply(c, NULL, 0) == 221)
		bc_wait_eof(c);
	if (c->resumed)
		atomic_fetch_add(&n_resumed, 1);
	bc_close(c);
	return code;
}

static int tcp_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	inet_pton(AF_INET, host, &sin.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *worker(void *arg)
{
	int tid = (int)(long)arg;
	int hold = ready_file != NULL;
	struct bc_conn *c = calloc(1, sizeof *c);

	c->tls = use_tls ? tls_ctx : NULL;
	c->resume = use_resume;
	for (;;) {
		int seq = atomic_fetch_add(&next_seq, 1);
		if (seq >= total)
			break;
		if (hold)
			sem_wait(&ramp);
		long long t0 = bc_now_us(), lat = 0;
		int fd = tcp_connect();
		int code = -9;
		if (fd >= 0) {
			c->in = c->out = fd;
			c->len = 0;
			c->resumed = 0;
			code = handshake(c, t0, &lat, hold);
			close(fd);
		}
		if (hold && !arrived)
			sem_post(&ramp);  /* failed before reaching the hold point */
		recs[seq] = (struct rec){ tid, seq, t0, code == expect ? lat : -1, code };
		if (code == expect) {
			atomic_fetch_add(&n_ok, 1);
		} else {
			if (atomic_fetch_add(&n_err, 1) < 5)
				fprintf(stderr, "hsclient: handshake %d: got %d, expected %d\n", seq, code, expect);
		}
		if (hold)
			break;
	}
	free(c);
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/*
 * One session with COMMAND on a socketpair (fd 0/1, as inetd passes a socket); 0 if it went well.
 * C carries the TLS session to offer (-r) from one run to the next.
 */
static int exec_one(struct bc_conn *c, long long *lat)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		execvp(exec_argv[0], exec_argv);
		_exit(127);
	}
	close(sv[1]);
	c->in = c->out = sv[0];
	c->len = 0;
	c->resumed = 0;
	io_timeout_ms = 120000;
	int code = handshake(c, bc_now_us(), lat, 0);
	close(sv[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (exec_n == 0)
		printf("exec code=%d latency_ms=%.3f status=%d resumed=%d\n", code, *lat / 1000.0, st, c->resumed);
	return code == expect && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* -x: one session, or with -n N sessions one after the other and COMMAND's CPU per session. */
static int run_exec(void)
{
	struct rusage r0, r1;
	long long lat = 0;
	int err = 0, resumed = 0;
	struct bc_conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return 1;
	c->tls = use_tls ? tls_ctx : NULL;
	c->resume = use_resume;
	if (exec_n == 0) {
		err = exec_one(c, &lat);
		free(c);
		return err;
	}
	getrusage(RUSAGE_CHILDREN, &r0);
	for (int i = 0; i < exec_n; i++) {
		err += exec_one(c, &lat);
		resumed += c->resumed;
	}
	getrusage(RUSAGE_CHILDREN, &r1);
	free(c);
#define TV_US(a, b) ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_usec - a.tv_usec))
	double us = TV_US(r0.ru_utime, r1.ru_utime), sy = TV_US(r0.ru_stime, r1.ru_stime);
	printf("exec n=%d err=%d cpu_ms=%.4f user_ms=%.4f sys_ms=%.4f minflt=%.1f resumed=%d\n", exec_n, err,
	       (us + sy) / 1000.0 / exec_n, us / 1000.0 / exec_n, sy / 1000.0 / exec_n,
	       (double)(r1.ru_minflt - r0.ru_minflt) / exec_n, resumed);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	int opt, n_given = 0;
	while ((opt = getopt(argc, argv, "h:p:m:u:w:d:e:n:c:o:R:G:xTr")) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'm': mode_odmr = strcmp(optarg, "smtp") != 0; break;
		case 'u': user = optarg; break;
		case 'w': pass = optarg; break;
		case 'd': domain = optarg; break;
		case 'e': expect = atoi(optarg); break;
		case 'n': total = atoi(optarg); n_given = 1; break;
		case 'T': use_tls = 1; break;
		case 'r': use_resume = 1; break;
		case 'c': conc = atoi(optarg); break;
		case 'o': csv_path = optarg; break;
		case 'R': ready_file = optarg; break;
		case 'G': go_file = optarg; break;
		case 'x': exec_argv = (char **)1; break;
		default:
			fprintf(stderr, "usage: see the comment at the top of hsclient.c\n");
			return 2;
		}
	}
	if (expect < 0)
		expect = mode_odmr ? 450 : 235;
	if (use_tls && (tls_ctx = bc_tls_ctx()) == NULL)
		return 2;
	if (exec_argv) {
		exec_argv = argv + optind;
		if (!*exec_argv)
			return 2;
		exec_n = n_given ? total : 0;
		return run_exec();
	}
	if (ready_file) {
		if (!go_file)
			return 2;
		total = conc;
		sem_init(&ramp, 0, HOLD_RAMP);
		io_timeout_ms = 60000;
	}
	if (port <= 0 || total <= 0 || conc <= 0)
		return 2;
	recs = calloc((size_t)total, sizeof *recs);
	pthread_t *th = calloc((size_t)conc, sizeof *th);
	long long w0 = bc_now_us();
	for (int i = 0; i < conc; i++) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 256 * 1024);
		pthread_create(&th[i], &at, worker, (void *)(long)i);
	}
	if (ready_file) {
		/* Failed handshakes count as arrived, so READYFILE still appears (errors are reported). */
		struct stat st;
		while (stat(go_file, &st) != 0) {
			if (atomic_load(&n_held) + atomic_load(&n_err) >= conc && atomic_load(&n_held) < conc) {
				int fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
				if (fd >= 0)
					close(fd);
			}
			usleep(10000);
		}
		pthread_mutex_lock(&hold_mu);
		hold_go = 1;
		pthread_cond_broadcast(&hold_cv);
		pthread_mutex_unlock(&hold_mu);
	}
	for (int i = 0; i < conc; i++)
		pthread_join(th[i], NULL);
	double wall = (bc_now_us() - w0) / 1e6;

	long long *lat = malloc((size_t)total * sizeof *lat);
	int k = 0;
	FILE *fp = csv_path ? fopen(csv_path, "w") : NULL;
	if (fp)
		fprintf(fp, "thread,seq,start_us,latency_us,code\n");
	for (int i = 0; i < total; i++) {
		if (fp)
			fprintf(fp, "%d,%d,%lld,%lld,%d\n", recs[i].thread, recs[i].seq, recs[i].start_us - w0,
				recs[i].lat_us, recs[i].code);
		if (recs[i].lat_us >= 0)
			lat[k++] = recs[i].lat_us;
	}
	if (fp)
		fclose(fp);
	qsort(lat, (size_t)k, sizeof *lat, cmp_ll);
#define PCT(p) (k ? lat[(int)((k - 1) * (p))] / 1000.0 : -1.0)
	printf("n=%d ok=%d err=%d wall_s=%.3f rate_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f min_ms=%.3f max_ms=%.3f\n",
	       total, (int)n_ok, (int)n_err, wall, n_ok / wall, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.0), PCT(1.0));
	if (use_tls)
		fprintf(stderr, "hsclient: %d of %d TLS handshakes resumed a session\n", (int)n_resumed, total);
	return n_err ? 1 : 0;
}
