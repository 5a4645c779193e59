/*
 * mta.h - what handoff.c needs from an MTA, and what the MTA files share: one ops table per MTA
 * (probe the queue, start releasing before the 250, say when the session is finished), the
 * state of one reversed session's queue run, and the queue listing the parsers fill in.
 */
#ifndef ODMRD_MTA_H
#define ODMRD_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "privsep.h"

/*
 * Jobs (queue runs) at once. Two Sendmail runs on disjoint queue IDs keep the customer busy while
 * either run is between messages (reading its next queue file, waiting for our replies): 1 000
 * x 10 KiB went from 798 to 1 047 msg/s; three runs were no faster, four slower (bench/analysis.md).
 */
#define MTA_JOBS 2

/* Where a queued message of ours stands. */
enum mta_where {
	MQ_WAITING,   /* queued, no delivery running: ours to release (Postfix deferred, Sendmail) */
	MQ_MOVING,    /* Postfix incoming/active/maildrop: the queue manager has it in hand */
	MQ_HELD       /* Postfix hold queue: an admin's decision, never released by us */
};

/* One queued message with at least one recipient in a granted domain (id first: mta_idx). */
struct mta_found {
	char id[PS_ID_MAX + 1];
	enum mta_where where;
	bool transport_deferred;  /* Postfix: every recipient of ours "deferred transport" */
	unsigned rcpts;           /* recipients of ours still queued in it */
	unsigned long long size;  /* Sendmail: its size as listed, octets */
};

/* A hash index over an array of records that start with their ID (mta.c). */
struct mta_idx {
	size_t *slot;   /* a record's position + 1; 0: empty */
	size_t cap;     /* a power of two, at least twice the records indexed */
	size_t n;       /* records taken in so far */
};

/* One queue listing, as the parsers leave it. */
struct mta_scan {
	struct mta_found *found;
	size_t nfound, capfound;
	struct mta_idx idx;           /* over found */
	char (*ids)[PS_ID_MAX + 1];   /* Sendmail: every queue ID listed, ours or not */
	size_t nids, capids;
	unsigned rcpts_waiting, rcpts_moving, rcpts_held;
	char reason[200];             /* why one waiting recipient of ours is still queued */
	struct mta_found *cur;        /* Sendmail parser: the message being read, if ours so far */
	char cur_id[PS_ID_MAX + 1];   /* Sendmail parser: its ID */
	unsigned long long cur_size;  /* Sendmail parser: its size */
	char cur_reason[200];         /* Sendmail parser: its status line */
	bool bad;                     /* out of memory or malformed beyond use: do not trust */
};

/* A queue ID this session knows about (id first: mta_idx). */
struct mta_id {
	char id[PS_ID_MAX + 1];
	unsigned released;     /* release requests made for it */
	bool pending;          /* to be released */
	unsigned long long size;  /* Sendmail: as the listing that found it said */
};

/* The queue side of one reversed session. */
struct mta_run {
	const struct config *cf;
	char *const *dom;      /* granted domains (lower case) */
	size_t n;
	struct mta_id *id;
	size_t nid, capid;
	struct mta_idx idx;    /* over id */
	pid_t job[MTA_JOBS];   /* releases / queue runs in progress; 0: a free slot */
	int job_status;        /* exit status of the jobs that ended last (non-zero if any failed) */
	unsigned jobs_failed;
	long long next_check;  /* Postfix: earliest next queue listing (net_now_ms) */
	unsigned check_gap;    /* Postfix: current gap between listings, ms */
	unsigned clean;        /* Postfix: listings in a row with nothing of ours on its way */
	long long listed_at;   /* Postfix: when the last listing started (net_now_ms) */
	unsigned rounds;       /* Sendmail: extra runs for mail queued during the session */
	unsigned npending;     /* Sendmail: IDs with pending set (sm_run_next runs after every step) */
	unsigned left;         /* recipients of ours still queued at the end */
	char left_why[200];
	struct mta_scan scan;  /* the last listing */
};

/* What the relay looks like now, for finished(). */
struct mta_tick {
	bool quiet;            /* no MTA transaction open, no command waiting */
	long long quiet_ms;    /* since the relay last did anything */
	unsigned conns;        /* MTA connections open */
};

struct mta_ops {
	const char *name;
	/* Is mail queued for the granted domains? 1 yes, 0 no, -1 the probe failed. */
	int (*probe)(struct mta_run *m);
	/* Start handing the mail over, before the 250: 0, or -1 (nothing sent, 451). */
	int (*start)(struct mta_run *m);
	/* Called after every relay step: 1 the session may QUIT, 0 not yet, -1 the MTA failed. */
	int (*finished)(struct mta_run *m, const struct mta_tick *t);
};

extern const struct mta_ops mta_postfix_ops;
extern const struct mta_ops mta_sendmail_ops;

/* ---- mta.c: shared by the MTA files ---- */

/* True if the domain of ADDR (after its last '@', before any '>') is a granted one, exactly. */
bool mta_ours(const struct mta_run *m, const char *addr, size_t len);
/* Run a PS_LIST request and hand each line of its output to FN; 0, or -1 if it failed. */
int mta_list(struct mta_run *m, void (*fn)(struct mta_run *, const char *, struct mta_scan *));
/* Start a release request for ITEMS in a free job slot; 0, or -1 (none free, or it failed). */
int mta_job_start(struct mta_run *m, enum ps_kind kind, const char *const *items, unsigned n);
/* Start a request and wait for every job (bounded); the exit status, or -1. */
int mta_job_run(struct mta_run *m, enum ps_kind kind, const char *const *items, unsigned n);
/* Wait for every running job (bounded); 0 if all exited 0, else a failed one's status or -1. */
int mta_job_wait(struct mta_run *m);
/*
 * How many jobs ended since the last call, 0 if none; m->job_status: non-zero if one exited so
 * (what that means is the MTA's: the caller counts jobs_failed).
 */
int mta_job_poll(struct mta_run *m);
/* How many jobs are running. */
unsigned mta_jobs(const struct mta_run *m);
/* The ID record for ID, created when CREATE; NULL if absent (or out of memory). */
struct mta_id *mta_id_get(struct mta_run *m, const char *id, bool create);
/* A found message in S for ID (added, zeroed, when new); NULL when out of memory. */
struct mta_found *mta_scan_found(struct mta_scan *s, const char *id, size_t len);
/* Empty S for the next listing (keeps its memory). */
void mta_scan_reset(struct mta_scan *s);
/* Record what S says is left at the end (recipients waiting + held), for the warning. */
void mta_note_left(struct mta_run *m, const struct mta_scan *s);
void mta_run_free(struct mta_run *m);

/* ---- the parsers, exposed for the unit tests (tests/unit/check_mta.c) ---- */

/* One line of `postqueue -j` into S. */
void pf_scan_line(struct mta_run *m, const char *line, struct mta_scan *s);
/* One line of `sendmail -bp -v` into S. */
void sm_scan_line(struct mta_run *m, const char *line, struct mta_scan *s);
/* After the last line: drop our IDs that are substrings of another listed ID (-qI matches substrings). */
void sm_scan_end(struct mta_scan *s);

#endif
