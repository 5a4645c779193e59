/*
 * proc.c - child processes for MTA commands (postqueue, sendmail, the exec handoff).
 *
 * Trusts: the argv it is given (built from the admin's config and validated domain names).
 * Invariants: no shell ever; the child inherits no descriptor but the three it is given (the
 * customer's socket must never leak into a queue runner); environment is PATH only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

static char *const proc_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

/* See proc.h. */
pid_t proc_spawn(char *const argv[], int out_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		_exit(127);
	if (dup2(null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 || dup2(null, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, proc_env);
	_exit(127);
}

/* See proc.h. */
int proc_reaped(pid_t pid, int *status)
{
	int st;
	pid_t r;

	do
		r = waitpid(pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return 1;
}

/* See proc.h. */
int proc_wait(pid_t pid, long timeout_ms)
{
	struct timespec step = { 0, 10 * 1000000 };
	int status, sig = 0;

	for (long waited = 0;; waited += 10) {
		int r = proc_reaped(pid, &status);
		if (r != 0)
			return r < 0 ? -1 : status;
		if (waited >= timeout_ms && sig != SIGKILL) {
			sig = sig ? SIGKILL : SIGTERM;
			kill(pid, sig);
			timeout_ms += 2000;
		}
		nanosleep(&step, NULL);
	}
}
