/*
 * spawn.c - start another program: postqueue and sendmail for a session (through proc.c), postconf
 * for odmrd -t (admin.c), postmap and postfix for odmrd-map.
 *
 * Trusts its caller for the argv (built from the configuration, never from a client). Invariants:
 * no shell ever; the child's environment is PATH alone; it inherits no descriptor but the three
 * it is given (the customer's socket, a log file, a lock must never reach a queue runner).
 */
#include <errno.h>   /* program_invocation_short_name (_GNU_SOURCE) */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"

static char *const spawn_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

/* See spawn.h. */
pid_t spawn_exec(char *const argv[], int in_fd, int out_fd, int err_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		_exit(127);
	if (in_fd >= 0)  /* a socket of ours may be non-blocking; the program expects ordinary stdio */
		fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) & ~O_NONBLOCK);
	/* stderr last: until then a failure can only be told by the exit status. */
	if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 ||
	    dup2(err_fd >= 0 ? err_fd : null, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, spawn_env);
	dprintf(2, "%s: cannot run %s: %s\n", program_invocation_short_name, argv[0], strerror(errno));
	_exit(127);
}
