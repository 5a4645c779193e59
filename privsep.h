/*
 * privsep.h - the typed requests a session may make of the MTA, and the one place that turns a
 * request into an argv. The root helper (proc.c) and an unprivileged session running the
 * commands itself both go through ps_argv(), so a request can never name a program or an option.
 */
#ifndef ODMRD_PRIVSEP_H
#define ODMRD_PRIVSEP_H

#include <stddef.h>
#include "config.h"

/*
 * Queue IDs in one release request (the count travels in one octet). Each request is a Sendmail
 * queue run of its own, and a run costs a process start and a queue scan (~20 ms in bench/):
 * 1 000 held messages took 16 runs with 64 (bench/analysis.md, relay throughput), 8 with 128.
 */
#define PS_ITEMS_MAX 128
#define PS_ID_MAX 32       /* octets of one queue ID (Postfix long IDs are ~17, Sendmail's 14-15) */
#define PS_MSG_MAX (4 + PS_ITEMS_MAX * (PS_ID_MAX + 1))   /* one encoded request */

enum ps_kind {
	PS_LIST = 1,     /* list the whole queue: postqueue -j, sendmail -bp -v */
	PS_FLUSH = 2,    /* Postfix only: postqueue -s DOMAIN (fast flush, one domain) */
	PS_RELEASE = 3   /* deliver these queue IDs now: postqueue -i ID (one), sendmail -qf -qIID... */
};

/* One request. Items point into the caller's storage (encode) or the received message (decode). */
struct ps_req {
	enum cf_mta mta;            /* the MTA the session believes it drives: must be the configured one */
	enum ps_kind kind;
	unsigned n;
	const char *item[PS_ITEMS_MAX];
};

/* The argv of one command, with room for the "-qIID" arguments it is built from. */
struct ps_argv {
	char *v[PS_ITEMS_MAX + 8];
	int n;
	char store[PS_ITEMS_MAX * (PS_ID_MAX + 4)];
	size_t used;
};

/* Serialise REQ into BUF; returns its length, or 0 if it does not fit or breaks the item limits. */
size_t ps_encode(const struct ps_req *req, char *buf, size_t len);
/* Parse a received request (BUF, LEN octets) into REQ; -1 and a reason in WHY if malformed. */
int ps_decode(const char *buf, size_t len, struct ps_req *req, char *why, size_t whylen);
/*
 * Build the one command REQ stands for, from the configuration alone: -1 and a reason in WHY for
 * anything the configured MTA does not do (another MTA, a kind it lacks, a bad domain or ID).
 */
int ps_argv(const struct config *cf, const struct ps_req *req, struct ps_argv *out, char *why,
	    size_t whylen);

#endif
