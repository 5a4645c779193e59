/*
 * fake_handoff.c - handoff.h for the session tests: handoff_prepare returns the status the test set
 * in fake_ho (see unit.h), records the user and domains it was given, and can run a hook (e.g. to
 * make client input pending); handoff_abort and handoff_run are counted.
 */
#include <stdio.h>
#include <string.h>

#include "handoff.h"
#include "unit.h"

struct handoff {
	int unused;
};

static struct handoff fake_ho_obj;
struct fake_handoff_state fake_ho;

/* See unit.h. */
void fake_handoff_init(void)
{
	memset(&fake_ho, 0, sizeof fake_ho);
	fake_ho.status = HO_READY;
}

/* See unit.h. */
struct handoff *fake_handoff_object(void)
{
	return &fake_ho_obj;
}

/* handoff.h's handoff_prepare, faked: the status the test set in fake_handoff (unit.h). */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen)
{
	(void)cf;
	fake_ho.n_prepare++;
	snprintf(fake_ho.user, sizeof fake_ho.user, "%s", user);
	fake_ho.n = n;
	for (size_t i = 0; i < n && i < FAKE_HO_MAX; i++)
		snprintf(fake_ho.domains[i], sizeof fake_ho.domains[i], "%s", domains[i]);
	if (fake_ho.on_prepare)
		fake_ho.on_prepare();
	if (fake_ho.status == HO_READY) {
		*hp = &fake_ho_obj;
	} else {
		snprintf(why, whylen, "fake status %d", (int)fake_ho.status);
	}
	return fake_ho.status;
}

/* handoff.h's handoff_start, faked: the status the test set in fake_handoff (unit.h). */
enum ho_status handoff_start(struct handoff *h, char *why, size_t whylen)
{
	(void)h;
	fake_ho.n_start++;
	if (fake_ho.start_status != HO_READY)
		snprintf(why, whylen, "fake start status %d", (int)fake_ho.start_status);
	return fake_ho.start_status;
}

/* handoff.h's handoff_run, faked: the status the test set in fake_handoff (unit.h). */
int handoff_run(struct handoff *h, struct conn *cust, struct ho_stats *st)
{
	(void)h;
	(void)cust;
	fake_ho.n_run++;
	if (st)
		st->result = "fake";
	return 0;
}

/* handoff.h's handoff_abort, faked: the status the test set in fake_handoff (unit.h). */
void handoff_abort(struct handoff *h)
{
	fake_ho.n_abort++;
	fake_ho.aborted = h;
}
