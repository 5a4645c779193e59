/*
 * proc.h - run the MTA's own commands: fork + execve, fixed argv, clean environment, no shell,
 * optionally through a privileged helper so the session itself runs unprivileged.
 */
#ifndef ODMRD_PROC_H
#define ODMRD_PROC_H

#include <stddef.h>
#include <sys/types.h>
#include "config.h"

/*
 * With `user` configured and started as root: fork a root helper that will run only the
 * configured MTA commands with allowed arguments, and drop this process to that user.
 * Without `user`: nothing (commands run as whoever started odmrd). -1 and err on failure.
 */
int proc_privsep(const struct config *cf, char *err, size_t errlen);
/*
 * Start ARGV[0] (absolute path) with stdin from /dev/null, stdout to OUT_FD (or /dev/null when -1),
 * stderr to /dev/null, every other descriptor closed, and only PATH in the environment.
 * Returns a job id (> 0), or -1. One job at a time when privilege-separated.
 */
pid_t proc_spawn(char *const argv[], int out_fd);
/*
 * fork + execve here, never through the helper: stdin IN_FD and stdout OUT_FD (-1: /dev/null),
 * stderr /dev/null, nothing else open, PATH only. For the exec handoff (IN_FD = the customer's
 * socket) and for the helper's own jobs. Returns the pid or -1.
 */
pid_t proc_exec(char *const argv[], int in_fd, int out_fd);
/* Wait for a proc_exec() child up to TIMEOUT_MS, then TERM, then KILL; exit status or -1. */
int proc_wait_local(pid_t pid, long timeout_ms);
/* Wait for JOB up to TIMEOUT_MS, then TERM, then KILL. Returns the exit status (0-255) or -1. */
int proc_wait(pid_t job, long timeout_ms);
/* Non-blocking: 1 and *status if JOB has ended, 0 if still running, -1 on error. */
int proc_reaped(pid_t job, int *status);
/* Ask JOB to stop (SIGTERM); collect it with proc_wait. */
void proc_kill(pid_t job);

#endif
