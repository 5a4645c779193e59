/*
 * handoff.h - the reversed state: from a granted ATRN to the MTA delivering over the customer's socket.
 * The session core calls handoff_prepare() before it answers 250; odmrd.c calls handoff_run() after.
 */
#ifndef ODMRD_HANDOFF_H
#define ODMRD_HANDOFF_H

#include <stddef.h>
#include "config.h"
#include "ho_stats.h"

enum ho_status {
	HO_READY,    /* mail waits, sockets bound, runner startable: answer 250 */
	HO_NOMAIL,   /* nothing queued for these domains: 453 */
	HO_BUSY,     /* another session holds this customer/domain, or asked too soon: 450 */
	HO_TEMPFAIL  /* probe or set-up failed: 451, nothing sent */
};

struct handoff;

/*
 * Probe the queue, take the customer's lock, bind one socket per granted domain.
 * user: authenticated SASL name; domains: n lower-case, validated names.
 * On HO_READY *hp is set; otherwise why holds a log-safe reason.
 */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen);

/*
 * Start the MTA's queue run for a prepared handoff, as the last step before 250 (its connections
 * wait in the sockets' backlog until the customer has greeted). HO_READY or HO_TEMPFAIL; on
 * HO_TEMPFAIL the handoff is released and why says what failed.
 */
enum ho_status handoff_start(struct handoff *h, char *why, size_t whylen);

struct conn;

/*
 * Run the reversed state on the customer's connection after 250 was sent, for at most
 * max_session_time. Releases everything prepare took. Returns 0 when the queue run ended normally.
 */
int handoff_run(struct handoff *h, struct conn *cust, struct ho_stats *st);

/* Give back what prepare took, without running (e.g. the customer pipelined after ATRN). */
void handoff_abort(struct handoff *h);

#endif
