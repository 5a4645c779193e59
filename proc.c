/*
 * proc.c - child processes for MTA commands (postqueue, sendmail), and privilege separation.
 *
 * Started as root with `user` set, the session drops to that user before it parses a single
 * client byte. Only mta = sendmail needs a root helper: its queue is root's (restrictqrun, a
 * root-owned queue directory), so the process the super-server started stays root, holds no
 * customer data (its fds 0-2 are /dev/null) and runs one typed request at a time (privsep.c
 * builds the argv from the configuration; the session never names a program or an option). With
 * mta = postfix, postqueue is set-group-ID postdrop and works for any user: no helper is forked,
 * which also saves a process per session.
 *
 * Trusts: the config (read as root before the split). The helper trusts nothing the session
 * process sends. Invariants: every child is started by spawn.c (no shell, PATH only, no
 * descriptor but the three it is given: the customer socket never leaks into a queue runner).
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
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proc.h"
#include "rundir.h"
#include "spawn.h"

#define PS_JOB 1            /* the one job id the helper hands out */
#define PS_KILL_GRACE_MS 3000

static int ps_sock = -1;    /* session side of the helper channel, or -1: run directly */
static bool ps_busy;        /* the helper runs our job */

/* See proc.h. */
pid_t proc_exec(char *const argv[], int in_fd, int out_fd)
{
	return spawn_exec(argv, in_fd, out_fd, -1);
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

/* Build REQ's argv and start it here; -1 (and a log line) if the request is refused. */
static pid_t ps_run(const struct config *cf, const struct ps_req *req, int out_fd)
{
	struct ps_argv a;
	char why[200];

	if (ps_argv(cf, req, &a, why, sizeof why) < 0) {
		log_msg(LOG_ERR, "privsep: refused a request: %s", why);
		return -1;
	}
	return proc_exec(a.v, -1, out_fd);
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

/* Decode and start one request in the helper; the pid or -1. */
static pid_t ps_start(const struct config *cf, const char *buf, size_t n, int out_fd)
{
	struct ps_req req;
	char why[200];

	if (ps_decode(buf, n, &req, why, sizeof why) < 0) {
		log_msg(LOG_ERR, "privsep: refused a malformed request: %s", why);
		return -1;
	}
	return ps_run(cf, &req, out_fd);
}

static volatile pid_t ps_session;

/* A signal for the process the super-server started is meant for the session: pass it on. */
static void ps_forward(int sig)
{
	if (ps_session > 0)
		kill(ps_session, sig);
}

/* Tell the session its job ended with STATUS (-1: refused, killed or failed to start). */
static void ps_report(int sock, int status)
{
	char msg[2] = { 'S', (char)(status < 0 ? 255 : status) };

	send(sock, msg, 2, MSG_NOSIGNAL);
}

/* The root helper: serve requests until the session process goes away. Never returns. */
static void ps_helper(const struct config *cf, int sock, pid_t session)
{
	struct sigaction sa = { .sa_handler = ps_forward };
	pid_t job = 0;
	int jobfd = -1, status;
	long long kill_at = 0;
	char buf[PS_MSG_MAX];

	ps_session = session;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (;;) {
		/* A pidfd wakes us the moment the job ends: the session's QUIT waits for that. */
		struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = jobfd, .events = POLLIN } };
		int timeout = job > 0 && jobfd < 0 ? 50 : -1;
		if (kill_at) {
			long long left = kill_at - net_now_ms();
			timeout = left < 0 ? 0 : (timeout >= 0 && timeout < left ? timeout : (int)left);
		}
		int r = poll(p, jobfd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (job > 0 && kill_at && net_now_ms() >= kill_at) {
			kill(job, SIGKILL);
			kill_at = 0;
		}
		if (job > 0 && proc_try_reap(job, &status) == 1) {
			ps_report(sock, status);
			if (jobfd >= 0)
				close(jobfd);
			job = 0;
			jobfd = -1;
			kill_at = 0;
		}
		if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int fd;
		ssize_t n = ps_recv(sock, buf, sizeof buf, &fd);
		if (n <= 0)
			break;
		if (buf[0] == 'K' && n == 1) {
			if (job > 0 && kill_at == 0) {
				kill(job, SIGTERM);
				kill_at = net_now_ms() + PS_KILL_GRACE_MS;
			}
		} else if (job > 0) {
			log_msg(LOG_ERR, "privsep: refused a request while a job runs");
			ps_report(sock, -1);
		} else if ((job = ps_start(cf, buf, (size_t)n, fd)) < 0) {
			job = 0;
			ps_report(sock, -1);
		} else {
			jobfd = pidfd_open(job, 0);
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

/* Fork the root helper; in the session process returns 0 with ps_sock set, -1 on failure. */
static int ps_fork_helper(const struct config *cf, char *err, size_t errlen)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid > 0) {
		/* Root side: never touches the customer's socket. */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
		close(sv[1]);
		ps_helper(cf, sv[0], pid);
	}
	close(sv[0]);
	ps_sock = sv[1];
	return 0;
}

/* See proc.h. */
int proc_privsep(const struct config *cf, char *err, size_t errlen)
{
	if (geteuid() == 0)
		rd_create(cf);
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
	pid_t helper = getpid();
	if (cf->mta == CF_MTA_SENDMAIL && ps_fork_helper(cf, err, errlen) < 0)
		return -1;
	if (chdir("/") < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || setuid(0) == 0) {
		snprintf(err, errlen, "cannot drop privileges to %s: %s", cf->user, strerror(errno));
		return -1;
	}
	/* The super-server signals the process it started, the helper: the session must follow. */
	if (ps_sock >= 0 && (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != helper)) {
		snprintf(err, errlen, "privilege separation: helper gone");
		return -1;
	}
	return 0;
}

/* See proc.h. */
pid_t proc_request(const struct config *cf, const struct ps_req *req, int out_fd)
{
	if (ps_sock < 0)
		return ps_run(cf, req, out_fd);
	char buf[PS_MSG_MAX];
	size_t n = ps_encode(req, buf, sizeof buf);
	if (n == 0 || ps_busy)
		return -1;
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
	if (sendmsg(ps_sock, &m, MSG_NOSIGNAL) < 0)
		return -1;
	ps_busy = true;
	return PS_JOB;
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
	ps_busy = false;
	if (n != 2 || msg[0] != 'S')
		return -1;
	*status = (unsigned char)msg[1] == 255 ? -1 : (unsigned char)msg[1];
	return 1;
}

/* See proc.h. The helper reports on its channel; our own child has a pidfd, one at a time. */
int proc_job_fd(pid_t job)
{
	static int fd = -1;
	static pid_t fd_job;

	if (ps_sock >= 0)
		return ps_sock;
	if (job != fd_job) {
		if (fd >= 0)
			close(fd);
		fd = pidfd_open(job, 0);
		fd_job = job;
	}
	return fd;
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
