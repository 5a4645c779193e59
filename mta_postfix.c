/*
 * mta_postfix.c - Postfix behind odmrd: probe with `postqueue -j`, release exactly the queued
 * messages of the granted domains, and decide from the queue's state when the session is over.
 *
 * Customer mail waits in the deferred queue (defer_transports holds the odmrl lmtp transport).
 * Releasing: `postqueue -s DOMAIN` first, one domain after another, because one command moves
 * everything the domain's fast-flush log knows; then one more listing, and `postqueue -i ID`
 * (Postfix >= 3.5, one ID per run) for every message of ours still deferred - mail queued
 * before the domain entered fast_flush_domains, or a domain that is not a fast-flush domain at
 * all (its -s fails; that is not an error). Both override defer_transports for that delivery
 * (verified with 3.7: lmtp connects at once). Mail that arrives during the session, or that a
 * flush race deferred again ("deferred transport"), is released the same way as it shows up.
 *
 * The session is over when the relay is quiet and two listings in a row show nothing of ours in
 * incoming/active and nothing deferred that is still ours to release: QUIT follows within
 * tens of milliseconds of the last end-of-data reply, instead of waiting for lmtp to close its
 * cached connection. Mail still queued then (refused by the customer, on hold) is counted for
 * the warning at QUIT.
 *
 * Trusts: postqueue's JSON only as jansson parses it; a recipient is ours by exact domain.
 * libjansson is opened at the first listing (dynlib.c), not linked: odmrd is exec'd for every
 * connection, and a session that never probes the queue should not load it.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "dynlib.h"
#include "log.h"
#include "mta.h"
#include "net.h"

#define PF_RELEASE_MAX 3    /* releases of one ID that a flush race deferred again */
#define PF_QUIET_MS 20      /* relay quiet this long before a listing is worth its cost */
#define PF_GAP_MIN_MS 30    /* first gap between listings while Postfix still has mail moving */
#define PF_GAP_MAX_MS 1000
#define PF_CONFIRM_MS 10    /* before the second clean listing */

/* True if WHY is the reason defer_transports gives: held, not tried. */
static bool td_reason(const char *why)
{
	return strstr(why, "deferred transport") != NULL;
}

/* The jansson functions the listing parser uses, bound by pf_jansson(). */
static struct {
	void *handle;
	__typeof__(json_loads) *loads;
	__typeof__(json_object_get) *object_get;
	__typeof__(json_string_value) *string_value;
	__typeof__(json_array_size) *array_size;
	__typeof__(json_array_get) *array_get;
	__typeof__(json_delete) *delete_;
} js;

/* Open libjansson (once); false, logged once, if it cannot be. */
static bool pf_jansson(void)
{
	static const struct dynlib_sym syms[] = {
		{ "json_loads", (void **)&js.loads },
		{ "json_object_get", (void **)&js.object_get },
		{ "json_string_value", (void **)&js.string_value },
		{ "json_array_size", (void **)&js.array_size },
		{ "json_array_get", (void **)&js.array_get },
		{ "json_delete", (void **)&js.delete_ },
	};
	static bool logged;
	char err[256];

	if (dynlib_load(MTA_JANSSON_SONAME, &js.handle, syms, sizeof syms / sizeof syms[0], err, sizeof err) == 0)
		return true;
	if (!logged)
		log_msg(LOG_ERR, "Postfix queue listing: %s", err);
	logged = true;
	return false;
}

/* jansson.h's inline json_decref(), calling json_delete through js (a direct call would link it). */
static void pf_json_free(json_t *j)
{
	if (j != NULL && j->refcount != (size_t)-1 && JSON_INTERNAL_DECREF(j) == 0)
		js.delete_(j);
}

/* See mta.h: one JSON object per message, recipients of ours counted by where they wait. */
void pf_scan_line(struct mta_run *m, const char *line, struct mta_scan *s)
{
	json_error_t err;

	if (line[strspn(line, " \t\r")] == '\0')
		return;
	if (!pf_jansson()) {
		s->bad = true;  /* no parser: the listing cannot be trusted */
		return;
	}
	json_t *msg = js.loads(line, 0, &err);
	const char *q = js.string_value(js.object_get(msg, "queue_name"));
	const char *id = js.string_value(js.object_get(msg, "queue_id"));
	json_t *rcpts = js.object_get(msg, "recipients");
	if (q == NULL || id == NULL || !json_is_array(rcpts)) {
		/* A line we cannot read could hide mail of ours: the listing is not trusted. */
		s->bad = true;
		pf_json_free(msg);
		return;
	}
	enum mta_where where = !strcmp(q, "deferred") ? MQ_WAITING :
			       (!strcmp(q, "incoming") || !strcmp(q, "active") || !strcmp(q, "maildrop")) ?
			       MQ_MOVING : MQ_HELD;
	unsigned ours = 0;
	bool td = true;
	size_t n = js.array_size(rcpts);
	for (size_t i = 0; i < n; i++) {
		json_t *r = js.array_get(rcpts, i);
		const char *addr = js.string_value(js.object_get(r, "address"));
		const char *why = js.string_value(js.object_get(r, "delay_reason"));
		if (addr == NULL || !mta_ours(m, addr, strlen(addr)))
			continue;
		ours++;
		if (why == NULL || !td_reason(why))
			td = false;
		/* For the warning at QUIT: a delivery's own reason says more than the deferral. */
		if (where == MQ_WAITING && why != NULL &&
		    (s->reason[0] == '\0' || (td_reason(s->reason) && !td_reason(why))))
			snprintf(s->reason, sizeof s->reason, "%s", why);
	}
	if (ours > 0) {
		struct mta_found *f = mta_scan_found(s, id, strlen(id));
		if (f != NULL) {
			f->where = where;
			f->transport_deferred = td;
			f->rcpts = ours;
		}
		if (where == MQ_WAITING)
			s->rcpts_waiting += ours;
		else if (where == MQ_MOVING)
			s->rcpts_moving += ours;
		else
			s->rcpts_held += ours;
	}
	pf_json_free(msg);
}

/* Probe: mail waits when a recipient of ours is queued anywhere but on hold. */
static int pf_probe(struct mta_run *m)
{
	if (mta_list(m, pf_scan_line) < 0)
		return -1;
	return m->scan.rcpts_waiting + m->scan.rcpts_moving > 0;
}

/* Start releasing the next pending ID; 0 if there is none or it could not start. */
static int pf_release_next(struct mta_run *m)
{
	for (size_t i = 0; i < m->nid; i++) {
		struct mta_id *id = &m->id[i];
		if (!id->pending)
			continue;
		const char *item = id->id;
		id->pending = false;
		id->released++;
		if (mta_job_start(m, PS_RELEASE, &item, 1) < 0) {
			log_msg(LOG_ERR, "cannot start postqueue -i %s", id->id);
			m->jobs_failed++;
			continue;
		}
		return 1;
	}
	return 0;
}

/* Note every message of ours in the last listing: waiting ones are to be released. */
static void pf_take_listing(struct mta_run *m, bool at_start)
{
	for (size_t i = 0; i < m->scan.nfound; i++) {
		struct mta_found *f = &m->scan.found[i];
		struct mta_id *id = mta_id_get(m, f->id, true);
		if (id == NULL)
			continue;
		if (f->where == MQ_WAITING) {
			/* Never handed over, or sent back by a flush race before anyone tried it. */
			if (id->released == 0 || (f->transport_deferred && id->released < PF_RELEASE_MAX))
				id->pending = true;
		} else if (f->where == MQ_MOVING && at_start && id->released == 0) {
			id->released = 1;  /* the flush (or the queue manager) has it: handed over */
		}
	}
}

/*
 * Before the 250: fast flush per domain, then the first postqueue -i, so that a postqueue that
 * cannot release anything is a 451. When neither ran (no -s worked, nothing deferred), one
 * postqueue -i of a message the listing shows moving proves Postfix is up: as root, postqueue -j
 * reads a stopped instance's queue directly and shows its active mail as moving for ever.
 */
static int pf_start(struct mta_run *m)
{
	unsigned flushed = 0;

	for (size_t i = 0; i < m->n; i++) {
		const char *d = m->dom[i];
		int st = mta_job_run(m, PS_FLUSH, &d, 1);
		if (st == 0)
			flushed++;
		else
			log_msg(LOG_INFO, "postqueue -s %s: status %d; releasing its mail by queue ID", d, st);
	}
	if (mta_list(m, pf_scan_line) < 0)
		return -1;
	pf_take_listing(m, true);
	int st = 0;
	if (pf_release_next(m))
		st = mta_job_wait(m);
	else if (m->jobs_failed)
		st = -1;
	else if (flushed == 0 && m->scan.nfound > 0) {
		const char *id = m->scan.found[0].id;
		st = mta_job_run(m, PS_RELEASE, &id, 1);
	}
	if (st != 0) {
		log_msg(LOG_ERR, "postqueue -i failed (status %d)", st);
		return -1;
	}
	m->check_gap = PF_GAP_MIN_MS;
	return 0;
}

/* See mta.h: keep releasing; when the relay is quiet, list the queue to see whether we are done. */
static int pf_finished(struct mta_run *m, const struct mta_tick *t)
{
	if (mta_job_poll(m) > 0 && m->job_status != 0) {
		log_msg(LOG_ERR, "postqueue -i failed (status %d); that message stays queued", m->job_status);
		m->jobs_failed++;
	}
	/* One postqueue -i at a time: each takes a few ms, and the queue manager does the rest. */
	if (mta_jobs(m) > 0 || pf_release_next(m))
		return 0;
	long long now = net_now_ms();
	/* Relay activity since the last listing (a whole transaction can pass within one step):
	 * the queue is moving, start over with short gaps. */
	if (!t->quiet || now - t->quiet_ms > m->listed_at) {
		m->check_gap = PF_GAP_MIN_MS;
		m->next_check = 0;
		m->clean = 0;
	}
	if (!t->quiet || t->quiet_ms < PF_QUIET_MS || now < m->next_check)
		return 0;
	m->listed_at = now;
	if (mta_list(m, pf_scan_line) < 0)
		return -1;
	pf_take_listing(m, false);
	bool more = m->scan.rcpts_moving > 0;
	for (size_t i = 0; i < m->nid && !more; i++)
		more = m->id[i].pending;
	/*
	 * showq reads the queue directories one after another: a message renamed from incoming to
	 * active meanwhile is in neither. A second clean listing a moment later is the answer.
	 */
	m->clean = more ? 0 : m->clean + 1;
	if (m->clean >= 2) {
		mta_note_left(m, &m->scan);
		return 1;
	}
	if (!more) {
		m->next_check = net_now_ms() + PF_CONFIRM_MS;
		return 0;
	}
	m->next_check = now + m->check_gap;
	m->check_gap = m->check_gap * 2 > PF_GAP_MAX_MS ? PF_GAP_MAX_MS : m->check_gap * 2;
	return 0;
}

const struct mta_ops mta_postfix_ops = { "postfix", pf_probe, pf_start, pf_finished };
