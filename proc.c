/*
 * proc.c - child processes for MTA commands (postqueue, sendmail), and privilege separation.
 *
 * When odmrd starts as root with `user` set, it splits in two: a root helper that holds no
 * customer data (its fds 0-2 are /dev/null) and will only execute the configured postqueue or
 * sendmail with an allow-listed argument shape (-j, -s DOMAIN, -bp -v -qR@DOMAIN, -qf -qR@DOMAIN),
 * and the session process, which drops to `user` before it parses a single client byte.
 * Sendmail queue runs need root (restrictqrun, root-owned queue), so this is how a hardened
 * install reaches them. Without `user`, commands run directly as the invoking user.
 *
 * Trusts: the config (read as root before the split). The helper trusts nothing the session
 * process sends. Invariants: no shell ever; a child inherits no descriptor but the three it is
 * given (the customer socket must never leak into a queue runner); environment is PATH only.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "domains.h"
#include "log.h"
#include "proc.h"

#define PS_MSG_MAX 4096
#define PS_ARGS_MAX 15
#define PS_JOB 1          /* the one job id the helper hands out */

static char *const proc_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
static int ps_sock = -1;   /* session side of the helper channel, or -1: run directly */

/* See proc.h. */
pid_t proc_exec(char *const argv[], int in_fd, int out_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		_exit(127);
	if (in_fd >= 0)  /* our socket is non-blocking; the program expects ordinary stdio */
		fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) & ~O_NONBLOCK);
	if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 ||
	    dup2(null, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, proc_env);
	_exit(127);
}

/* waitpid without blocking; exit status or -1 for a signal. */
static int proc_try_reap(pid_t pid, int *status)
{
	int st;
	pid_t r;

	do
		r = waitpid(pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return 1;
}

/* True if S is "-qR@" followed by a valid domain. */
static bool ps_qr(const char *s)
{
	return strncmp(s, "-qR@", 4) == 0 && dom_valid(s + 4, strlen(s + 4));
}

/* The helper's allow-list: the configured programs with the argument shapes handoff.c uses. */
static bool ps_allowed(const struct config *cf, char **av, int ac)
{
	int i = 1;

	if (cf->postqueue && !strcmp(av[0], cf->postqueue)) {
		if (cf->postfix_config_dir && ac > 2 && !strcmp(av[1], "-c") &&
		    !strcmp(av[2], cf->postfix_config_dir))
			i = 3;
		if (ac == i + 1 && !strcmp(av[i], "-j"))
			return true;
		return ac == i + 2 && !strcmp(av[i], "-s") && dom_valid(av[i + 1], strlen(av[i + 1]));
	}
	if (cf->sendmail && !strcmp(av[0], cf->sendmail)) {
		if (cf->sendmail_cf && ac > 2 && !strcmp(av[1], "-C") && !strcmp(av[2], cf->sendmail_cf))
			i = 3;
		if (ac == i + 3 && !strcmp(av[i], "-bp") && !strcmp(av[i + 1], "-v"))
			return ps_qr(av[i + 2]);
		return ac == i + 2 && !strcmp(av[i], "-qf") && ps_qr(av[i + 1]);
	}
	return false;
}

/* Receive one request; returns its length, 0 at EOF, -1 on error. *fd: a passed descriptor or -1. */
static ssize_t ps_recv(int sock, char *buf, size_t len, int *fd)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof u.b };
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (n >= 0 && c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof *fd);
	return n;
}

/* Run one allow-listed request; returns the pid or -1. */
static pid_t ps_start(const struct config *cf, char *buf, size_t n, int out_fd)
{
	char *av[PS_ARGS_MAX + 1];
	int ac = 0;

	if (n < 2 || buf[n - 1] != '\0')
		return -1;
	for (size_t i = 1; i < n && ac < PS_ARGS_MAX; i += strlen(buf + i) + 1)
		av[ac++] = buf + i;
	av[ac] = NULL;
	if (ac == 0 || !ps_allowed(cf, av, ac)) {
		log_msg(LOG_ERR, "privsep: refused a command outside the allow-list");
		return -1;
	}
	return proc_exec(av, -1, out_fd);
}

static volatile pid_t ps_session;

/* A signal for the process the super-server started is meant for the session: pass it on. */
static void ps_forward(int sig)
{
	if (ps_session > 0)
		kill(ps_session, sig);
}

/* The root helper: serve requests until the session process goes away. Never returns. */
static void ps_helper(const struct config *cf, int sock, pid_t session)
{
	struct sigaction sa = { .sa_handler = ps_forward };
	pid_t job = 0;

	ps_session = session;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	long long killed_at = 0;
	int status;
	char buf[PS_MSG_MAX];

	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, job > 0 ? 50 : -1);
		if (job > 0 && proc_try_reap(job, &status) == 1) {
			char msg[2] = { 'S', (char)(status < 0 ? 255 : status) };
			send(sock, msg, 2, MSG_NOSIGNAL);
			job = 0;
		}
		if (job > 0 && killed_at && time(NULL) - killed_at > 3)
			kill(job, SIGKILL);
		if (r <= 0 || !(p.revents & (POLLIN | POLLHUP)))
			continue;
		int fd;
		ssize_t n = ps_recv(sock, buf, sizeof buf, &fd);
		if (n <= 0)
			break;
		if (buf[0] == 'R' && job == 0) {
			job = ps_start(cf, buf, (size_t)n, fd);
			killed_at = 0;
			if (job < 0) {
				job = 0;
				send(sock, "S\377", 2, MSG_NOSIGNAL);
			}
		} else if (buf[0] == 'K' && job > 0) {
			kill(job, SIGTERM);
			killed_at = time(NULL);
		}
		if (fd >= 0)
			close(fd);
	}
	if (job > 0)
		proc_wait_local(job, 0);
	while (waitpid(session, &status, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* See proc.h. */
int proc_privsep(const struct config *cf, char *err, size_t errlen)
{
	int sv[2];

	if (cf->user == NULL)
		return 0;
	struct passwd *pw = getpwnam(cf->user);
	if (pw == NULL) {
		snprintf(err, errlen, "user %s: no such user", cf->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user = %s: must be an unprivileged account", cf->user);
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		snprintf(err, errlen, "user = %s needs odmrd to start as root", cf->user);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* Root side: never touches the customer's socket. */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(sv[1]);
		ps_helper(cf, sv[0], pid);
	}
	close(sv[0]);
	pid_t helper = getppid();
	if (chdir("/") < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || setuid(0) == 0) {
		snprintf(err, errlen, "cannot drop privileges to %s: %s", cf->user, strerror(errno));
		return -1;
	}
	/* The super-server signals the process it started, the helper: the session must follow. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != helper) {
		snprintf(err, errlen, "privilege separation: helper gone");
		return -1;
	}
	ps_sock = sv[1];
	return 0;
}

/* See proc.h. */
pid_t proc_spawn(char *const argv[], int out_fd)
{
	if (ps_sock < 0)
		return proc_exec(argv, -1, out_fd);
	char buf[PS_MSG_MAX];
	size_t n = 1;
	buf[0] = 'R';
	for (int i = 0; argv[i]; i++) {
		size_t k = strlen(argv[i]) + 1;
		if (n + k > sizeof buf)
			return -1;
		memcpy(buf + n, argv[i], k);
		n += k;
	}
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = { buf, n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (out_fd >= 0) {
		m.msg_control = u.b;
		m.msg_controllen = sizeof u.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &out_fd, sizeof out_fd);
	}
	return sendmsg(ps_sock, &m, MSG_NOSIGNAL) < 0 ? -1 : PS_JOB;
}

/* See proc.h. */
int proc_reaped(pid_t job, int *status)
{
	if (ps_sock < 0) {
		int r = proc_try_reap(job, status);
		return r < 0 ? -1 : r;
	}
	char msg[2];
	struct pollfd p = { .fd = ps_sock, .events = POLLIN };
	if (poll(&p, 1, 0) <= 0)
		return 0;
	ssize_t n = recv(ps_sock, msg, sizeof msg, 0);
	if (n != 2 || msg[0] != 'S')
		return -1;
	*status = (unsigned char)msg[1] == 255 ? -1 : (unsigned char)msg[1];
	return 1;
}

/* See proc.h. */
void proc_kill(pid_t job)
{
	if (ps_sock < 0)
		kill(job, SIGTERM);
	else
		send(ps_sock, "K", 1, MSG_NOSIGNAL);
}

/* See proc.h. */
int proc_wait_local(pid_t pid, long timeout_ms)
{
	struct timespec step = { 0, 10 * 1000000 };
	int status, stage = 0;

	for (long waited = 0;; waited += 10) {
		int r = proc_try_reap(pid, &status);
		if (r != 0)
			return r < 0 ? -1 : status;
		if (waited >= timeout_ms && stage < 2) {
			kill(pid, stage++ == 0 ? SIGTERM : SIGKILL);
			timeout_ms += 5000;
		}
		nanosleep(&step, NULL);
	}
}

/* See proc.h. */
int proc_wait(pid_t job, long timeout_ms)
{
	struct timespec step = { 0, 10 * 1000000 };
	int status, killed = 0;

	if (ps_sock < 0)
		return proc_wait_local(job, timeout_ms);
	for (long waited = 0;; waited += 10) {
		int r = proc_reaped(job, &status);
		if (r != 0)
			return r < 0 ? -1 : status;
		if (waited >= timeout_ms && !killed) {
			proc_kill(job);  /* the helper follows up with SIGKILL after 3 s */
			killed = 1;
		}
		nanosleep(&step, NULL);
	}
}
