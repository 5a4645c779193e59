/*
 * proc.h - run the MTA's own commands: fork + execve, fixed argv, clean environment, no shell.
 */
#ifndef ODMRD_PROC_H
#define ODMRD_PROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Start ARGV[0] (absolute path) with stdin from /dev/null, stdout to OUT_FD (or /dev/null when -1),
 * stderr to /dev/null, every other descriptor closed, and only PATH in the environment.
 * Returns the pid, or -1.
 */
pid_t proc_spawn(char *const argv[], int out_fd);
/* Wait for PID up to TIMEOUT_MS, then TERM, then KILL. Returns the exit status (0-255) or -1. */
int proc_wait(pid_t pid, long timeout_ms);
/* Non-blocking: 1 and *status if PID has exited, 0 if still running, -1 on error. */
int proc_reaped(pid_t pid, int *status);

#endif
