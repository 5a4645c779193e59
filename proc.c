/*
 * proc.c - child processes for MTA commands (postqueue, sendmail), and privilege separation.
 *
 * Started as root with `user` set, the session drops to that user before it parses a single
 * client byte. Only mta = sendmail needs a root helper: its queue is root's (restrictqrun, a
 * root-owned queue directory), so the process the super-server started stays root, holds no
 * customer data (its fds 0-2 are /dev/null) and runs typed requests, at most PS_LANES at a time
 * (privsep.c builds the argv from the configuration; the session never names a program or an
 * option). The session names the lane of each request, and the helper reports each job's end on
 * its lane, so neither side guesses which job a report is about. With
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

#define PS_KILL_GRACE_MS 3000

static int ps_sock = -1;    /* session side of the helper channel, or -1: run directly */
/* The session's side of each helper lane (1..PS_LANES); through the helper a job id is its lane. */
static struct {
	bool busy;              /* the helper runs our job there */
	bool ended;             /* its end was reported and not yet collected */
	int status;             /* what the report said */
} ps_lane[PS_LANES + 1];

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

/* Tell the session its job on LANE ended with STATUS (-1: refused, killed or failed to start). */
static void ps_report(int sock, unsigned lane, int status)
{
	char msg[3] = { 'S', (char)lane, (char)(status < 0 ? 255 : status) };

	send(sock, msg, 3, MSG_NOSIGNAL);
}

/* See proc.h. */
void ps_job_reap(int sock, struct ps_job *j, unsigned lane)
{
	int status;

	if (j->pid > 0 && j->kill_at && net_now_ms() >= j->kill_at) {
		kill(j->pid, SIGKILL);
		j->kill_at = 0;
	}
	if (j->pid > 0 && proc_try_reap(j->pid, &status) == 1) {
		ps_report(sock, lane, status);
		if (j->fd >= 0)
			close(j->fd);
		*j = (struct ps_job){ .fd = -1 };
	}
}

/* See proc.h. */
void ps_serve(const struct config *cf, int sock, struct ps_job *job, const char *buf, size_t n, int fd)
{
	unsigned lane = n >= 2 ? (unsigned char)buf[1] : 0;
	struct ps_job *j = lane >= 1 && lane <= PS_LANES ? &job[lane] : NULL;

	if (j != NULL && buf[0] == 'K' && n == 2) {
		if (j->pid > 0 && j->kill_at == 0) {
			kill(j->pid, SIGTERM);
			j->kill_at = net_now_ms() + PS_KILL_GRACE_MS;
		}
	} else if (j == NULL || buf[0] != 'R') {
		log_msg(LOG_ERR, "privsep: refused a malformed message");
		if (j != NULL)
			ps_report(sock, lane, -1);
	} else if (j->pid > 0) {
		log_msg(LOG_ERR, "privsep: refused a request for a lane whose job runs");
		ps_report(sock, lane, -1);
	} else if ((j->pid = ps_start(cf, buf + 2, n - 2, fd)) < 0) {
		j->pid = 0;
		ps_report(sock, lane, -1);
	} else {
		j->fd = pidfd_open(j->pid, 0);
	}
}

/* The root helper: serve requests until the session process goes away. Never returns. */
static void ps_helper(const struct config *cf, int sock, pid_t session)
{
	struct sigaction sa = { .sa_handler = ps_forward };
	struct ps_job job[PS_LANES + 1];
	char buf[PS_MSG_MAX + 2];
	int status;

	for (unsigned l = 0; l <= PS_LANES; l++)
		job[l] = (struct ps_job){ .fd = -1 };
	ps_session = session;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (;;) {
		/* A pidfd wakes us the moment a job ends: the session's QUIT waits for that. */
		struct pollfd p[1 + PS_LANES] = { { .fd = sock, .events = POLLIN } };
		int timeout = -1;
		for (unsigned l = 1; l <= PS_LANES; l++) {
			p[l] = (struct pollfd){ .fd = job[l].fd, .events = POLLIN };
			if (job[l].pid > 0 && job[l].fd < 0)
				timeout = 50;
			if (job[l].kill_at) {
				long long left = job[l].kill_at - net_now_ms();
				timeout = left < 0 ? 0 : (timeout >= 0 && timeout < left ? timeout : (int)left);
			}
		}
		int r = poll(p, 1 + PS_LANES, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (unsigned l = 1; l <= PS_LANES; l++)
			ps_job_reap(sock, &job[l], l);
		if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int fd;
		ssize_t n = ps_recv(sock, buf, sizeof buf, &fd);
		if (n <= 0)
			break;
		ps_serve(cf, sock, job, buf, (size_t)n, fd);
		if (fd >= 0)
			close(fd);
	}
	for (unsigned l = 1; l <= PS_LANES; l++)
		if (job[l].pid > 0)
			proc_wait_local(job[l].pid, 0);
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
	char buf[PS_MSG_MAX + 2];
	unsigned lane = 1;
	while (lane <= PS_LANES && (ps_lane[lane].busy || ps_lane[lane].ended))
		lane++;
	size_t n = ps_encode(req, buf + 2, sizeof buf - 2);
	if (n == 0 || lane > PS_LANES)
		return -1;
	buf[0] = 'R';
	buf[1] = (char)lane;
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = { buf, n + 2 };
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
	ps_lane[lane].busy = true;
	return (pid_t)lane;
}

/* See proc.h. */
int proc_reaped(pid_t job, int *status)
{
	if (ps_sock < 0) {
		int r = proc_try_reap(job, status);
		return r < 0 ? -1 : r;
	}
	if (job < 1 || job > PS_LANES || !ps_lane[job].busy)
		return -1;
	/* Take in every report that has arrived: another lane's end may come before this one's. */
	char msg[3];
	ssize_t n;
	while ((n = recv(ps_sock, msg, sizeof msg, MSG_DONTWAIT)) > 0) {
		unsigned lane = (unsigned char)msg[1];
		if (n != 3 || msg[0] != 'S' || lane < 1 || lane > PS_LANES || !ps_lane[lane].busy)
			continue;
		ps_lane[lane].ended = true;
		ps_lane[lane].status = (unsigned char)msg[2] == 255 ? -1 : (unsigned char)msg[2];
	}
	if (n == 0 && !ps_lane[job].ended) {
		ps_lane[job].busy = false;   /* the helper is gone: so is the job */
		return -1;
	}
	if (!ps_lane[job].ended)
		return 0;
	ps_lane[job].busy = ps_lane[job].ended = false;
	*status = ps_lane[job].status;
	return 1;
}

/* See proc.h. The helper reports on its channel; our own children have a pidfd each. */
int proc_job_fd(pid_t job)
{
	static struct { pid_t pid; int fd; } pf[PS_LANES];
	static unsigned next;

	if (ps_sock >= 0)
		return ps_sock;
	for (unsigned i = 0; i < PS_LANES; i++)
		if (pf[i].pid == job && pf[i].fd > 0)
			return pf[i].fd;
	/* A new job takes a free place, or that of a job that has ended (its pidfd is readable). */
	unsigned i = PS_LANES;
	for (unsigned k = 0; k < PS_LANES && i == PS_LANES; k++) {
		struct pollfd p = { .fd = pf[k].fd, .events = POLLIN };
		if (pf[k].fd <= 0 || poll(&p, 1, 0) != 0)
			i = k;
	}
	if (i == PS_LANES)
		i = next++ % PS_LANES;
	if (pf[i].fd > 0)
		close(pf[i].fd);
	pf[i].pid = job;
	pf[i].fd = pidfd_open(job, 0);
	return pf[i].fd;
}

/* See proc.h. */
void proc_kill(pid_t job)
{
	char msg[2] = { 'K', (char)job };

	if (ps_sock < 0)
		kill(job, SIGTERM);
	else
		send(ps_sock, msg, 2, MSG_NOSIGNAL);
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
