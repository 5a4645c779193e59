/*
 * handoff.c - placeholder until the relay lands: every granted ATRN gets 451, nothing is sent.
 */
#include <stdio.h>
#include "handoff.h"

/* Refuse: no MTA handoff is built in yet. */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen)
{
	(void)cf; (void)user; (void)domains; (void)n;
	*hp = NULL;
	snprintf(why, whylen, "MTA handoff not available in this build");
	return HO_TEMPFAIL;
}

/* Nothing to run. */
int handoff_run(struct handoff *h, int in_fd, int out_fd, struct ho_stats *st)
{
	(void)h; (void)in_fd; (void)out_fd;
	st->result = "none";
	return -1;
}

/* Nothing to release. */
void handoff_abort(struct handoff *h)
{
	(void)h;
}
