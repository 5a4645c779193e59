/*
 * fake_handoff.c - handoff.h for the fuzzer: handoff_prepare answers with statuses chosen by input
 * bytes (see fuzz_fakes.h) and never touches a socket, a lock or the MTA. It checks the security
 * properties the session core must keep before anything would reach the MTA: only an authenticated
 * customer, only alice (the one user with a valid map entry), only domains from alice's map entry,
 * no duplicates, and one prepared handoff at a time, released exactly once (run or abort).
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_fakes.h"

struct handoff {
	int live;
};

static struct handoff fz_ho_obj;
static uint8_t fz_statuses;
static unsigned fz_prepares;
int fz_authenticated;

/* See fuzz_fakes.h. */
void fz_ho_begin(uint8_t statuses)
{
	fz_ho_obj.live = 0;
	fz_statuses = statuses;
	fz_prepares = 0;
	fz_authenticated = 0;
}

/* See fuzz_fakes.h. */
int fz_ho_live(void)
{
	return fz_ho_obj.live;
}

/* See fuzz_fakes.h. */
unsigned fz_ho_prepares(void)
{
	return fz_prepares;
}

/* See fuzz_fakes.h. */
struct handoff *fz_ho_object(void)
{
	return &fz_ho_obj;
}

/* handoff.h's handoff_prepare, faked for the fuzzer (fuzz_fakes.h). */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen)
{
	static const char *const alices[] = { "a.example", "b.example" };

	FZ_CHECK(cf != NULL && hp != NULL && why != NULL && whylen > 0);
	FZ_CHECK(fz_authenticated);
	FZ_CHECK(!fz_ho_obj.live);
	FZ_CHECK(!strcmp(user, "alice") || !strcmp(user, "alice@example.org"));
	FZ_CHECK(n >= 1 && n <= 2 && domains != NULL);
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(!strcmp(domains[i], alices[0]) || !strcmp(domains[i], alices[1]));
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(strcmp(domains[i], domains[j]) != 0);
	}
	enum ho_status st = (enum ho_status)((fz_statuses >> (2 * (fz_prepares % 4))) & 3);
	fz_prepares++;
	if (st == HO_READY) {
		fz_ho_obj.live = 1;
		*hp = &fz_ho_obj;
	} else {
		snprintf(why, whylen, "fake handoff status %d", (int)st);
	}
	return st;
}

/* handoff.h's handoff_start, faked for the fuzzer (fuzz_fakes.h). */
enum ho_status handoff_start(struct handoff *h, char *why, size_t whylen)
{
	FZ_CHECK(h == &fz_ho_obj && h->live && why != NULL && whylen > 0);
	return HO_READY;
}

/* handoff.h's handoff_run, faked for the fuzzer (fuzz_fakes.h). */
int handoff_run(struct handoff *h, struct conn *cust, struct ho_stats *st)
{
	(void)cust;
	FZ_CHECK(h == &fz_ho_obj && h->live);
	h->live = 0;
	if (st != NULL)
		st->result = "fake-done";
	return 0;
}

/* handoff.h's handoff_abort, faked for the fuzzer (fuzz_fakes.h). */
void handoff_abort(struct handoff *h)
{
	FZ_CHECK(h == &fz_ho_obj && h->live);
	h->live = 0;
}
