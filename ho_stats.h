/*
 * ho_stats.h - what one reversed session did, for the summary log line: counted by relay.c,
 * completed by handoff.c, logged by odmrd.c. Its own header so relay.h needs nothing of handoff.h.
 */
#ifndef ODMRD_HO_STATS_H
#define ODMRD_HO_STATS_H

struct ho_stats {
	unsigned mta_conns;     /* MTA client connections carried */
	unsigned messages;      /* end-of-data replies relayed */
	unsigned rcpts_ok;      /* recipients the customer accepted */
	unsigned rcpts_failed;  /* recipients the customer refused */
	const char *result;     /* short word: "done", "customer-lost", "mta-error", ... */
};

#endif
