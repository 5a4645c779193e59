/*
 * proc.h - run the MTA's own commands: fork + execve, fixed argv, clean environment, no shell,
 * through a root helper only where a command needs root (Sendmail's queue), and the privilege
 * drop of a session started as root.
 */
#ifndef ODMRD_PROC_H
#define ODMRD_PROC_H

#include <stddef.h>
#include <sys/types.h>
#include "config.h"
#include "privsep.h"

/*
 * Started as root: create run_dir if it is missing (rundir.c), then, with `user` configured,
 * switch the session to that user. Only mta = sendmail keeps a root helper (its queue runs need
 * root); Postfix's postqueue works unprivileged (set-group-ID postdrop), so no process is forked
 * for it. Not root: nothing, unless `user` names another account (error). -1 and err on failure.
 */
int proc_privsep(const struct config *cf, char *err, size_t errlen);
/*
 * Start the command REQ stands for (privsep.c builds its argv from CF): stdin /dev/null, stdout
 * OUT_FD (or /dev/null when -1), stderr /dev/null, nothing else open, PATH only. Through the
 * helper when there is one (one job at a time there). Returns a job id (> 0), or -1.
 */
pid_t proc_request(const struct config *cf, const struct ps_req *req, int out_fd);
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
/*
 * A descriptor that turns readable when JOB ends (then call proc_reaped), to poll beside other
 * input; proc.c owns it (never read or close it). -1 if there is none (the caller polls by time).
 */
int proc_job_fd(pid_t job);
/* Ask JOB to stop (SIGTERM; the helper follows up with SIGKILL); collect it with proc_wait. */
void proc_kill(pid_t job);

/* ---- the root helper's side, exposed for the unit tests (tests/unit/check_mta.c) ---- */

#define PS_LANES 2   /* jobs the helper runs at once for its session (mta.h MTA_JOBS) */

/* The helper's side of one lane: the job running there. */
struct ps_job {
	pid_t pid;           /* 0: free */
	int fd;              /* its pidfd, or -1 (then the helper polls every 50 ms) */
	long long kill_at;   /* SIGKILL then, after a SIGTERM; 0: not asked to stop */
};
/*
 * One message of N octets from the session on SOCK: a request ('R', lane, request; FD a passed
 * descriptor or -1) started on JOB[lane], or a stop ('K', lane). Anything else, a lane outside
 * 1..PS_LANES or a request for a lane whose job runs is refused and logged; a refused request
 * on a valid lane is reported ('S', lane, 255).
 */
void ps_serve(const struct config *cf, int sock, struct ps_job *job, const char *buf, size_t n, int fd);
/* Collect J's job (on LANE) if it has ended, and report its status on SOCK ('S', lane, status). */
void ps_job_reap(int sock, struct ps_job *j, unsigned lane);

#endif
