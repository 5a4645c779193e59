/*
 * mta.c - what the MTA files (mta_postfix.c, mta_sendmail.c) share: the exact-domain test every
 * recipient goes through, running a queue listing line by line within a deadline, the jobs
 * (releases or queue runs, up to MTA_JOBS at once) a session has going, and the bookkeeping of
 * queue IDs.
 *
 * Trusts: the MTA's output only as far as the parsers check it; an address counts as ours only
 * when its domain equals a granted domain, never by substring. Invariants: at most MTA_JOBS jobs
 * at a time (the root helper runs as many); a listing that failed or was cut off is never trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "mta.h"
#include "net.h"
#include "proc.h"

#define MTA_CMD_TIMEOUT_MS 60000   /* a listing must end within this (showq can hang) */
#define MTA_LIST_MAX (256u << 20)  /* a listing larger than this is not read to the end */

/* See mta.h. */
bool mta_ours(const struct mta_run *m, const char *addr, size_t len)
{
	const char *at = NULL;

	for (size_t i = 0; i < len; i++)
		if (addr[i] == '@')
			at = addr + i;
	if (at == NULL)
		return false;
	const char *d = at + 1;
	size_t dl = len - (size_t)(d - addr);
	while (dl > 0 && (d[dl - 1] == '>' || d[dl - 1] == ' ' || d[dl - 1] == '\t'))
		dl--;
	for (size_t i = 0; i < m->n; i++)
		if (strlen(m->dom[i]) == dl && strncasecmp(m->dom[i], d, dl) == 0)
			return true;
	return false;
}

/* Hand each complete line in BUF[0..*len) to FN; keep the unfinished rest at the front. */
static void mta_lines(struct mta_run *m, char *buf, size_t *len,
		      void (*fn)(struct mta_run *, const char *, struct mta_scan *))
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
		*nl = '\0';
		fn(m, start, &m->scan);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
}

/*
 * See mta.h. The whole within MTA_CMD_TIMEOUT_MS: a command that hangs (postqueue waiting for
 * showq) is stopped and counts as failed.
 */
int mta_list(struct mta_run *m, void (*fn)(struct mta_run *, const char *, struct mta_scan *))
{
	struct ps_req req = { .mta = m->cf->mta, .kind = PS_LIST };
	long long deadline = net_now_ms() + MTA_CMD_TIMEOUT_MS;
	char *buf = NULL;
	size_t len = 0, cap = 0, total = 0;
	bool failed = false;
	int p[2];

	mta_scan_reset(&m->scan);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t job = proc_request(m->cf, &req, p[1]);
	close(p[1]);
	if (job < 0) {
		close(p[0]);
		return -1;
	}
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		long long left = deadline - net_now_ms();
		int r = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_msg(LOG_ERR, "queue listing: no end within %d s; stopping it", MTA_CMD_TIMEOUT_MS / 1000);
			failed = true;
			break;
		}
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap);
			if (nb == NULL) {
				failed = true;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		total += (size_t)n;
		if (total > MTA_LIST_MAX) {
			log_msg(LOG_ERR, "queue listing: longer than %u MiB; not trusted", MTA_LIST_MAX >> 20);
			failed = true;
			break;
		}
		mta_lines(m, buf, &len, fn);
	}
	if (!failed && len > 0) {
		buf[len] = '\0';
		fn(m, buf, &m->scan);
	}
	free(buf);
	close(p[0]);
	long long left = deadline - net_now_ms();
	int st = proc_wait(job, failed || left < 0 ? 0 : (long)left);
	if (st != 0 && !failed)
		log_msg(LOG_ERR, "queue listing (%s) failed with status %d",
			m->cf->mta == CF_MTA_POSTFIX ? m->cf->postqueue : m->cf->sendmail, st);
	return failed || st != 0 || m->scan.bad ? -1 : 0;
}

/* See mta.h. */
int mta_job_start(struct mta_run *m, enum ps_kind kind, const char *const *items, unsigned n)
{
	struct ps_req req = { .mta = m->cf->mta, .kind = kind, .n = n };
	unsigned slot = 0;

	while (slot < MTA_JOBS && m->job[slot] > 0)
		slot++;
	if (slot == MTA_JOBS || n > PS_ITEMS_MAX)
		return -1;
	for (unsigned i = 0; i < n; i++)
		req.item[i] = items[i];
	pid_t job = proc_request(m->cf, &req, -1);
	if (job < 0)
		return -1;
	m->job[slot] = job;
	return 0;
}

/* See mta.h. */
int mta_job_run(struct mta_run *m, enum ps_kind kind, const char *const *items, unsigned n)
{
	return mta_job_start(m, kind, items, n) < 0 ? -1 : mta_job_wait(m);
}

_Static_assert(MTA_JOBS <= PS_LANES, "the root helper must run as many jobs as a session starts");

/* Fold the exit status ST of the Nth job to end (N from 1) into *WORST: a failure wins. */
static void mta_job_status(int *worst, int n, int st)
{
	if (n == 1 || st != 0)
		*worst = st;
}

/* See mta.h. */
int mta_job_wait(struct mta_run *m)
{
	int worst = -1, ended = 0;

	for (unsigned i = 0; i < MTA_JOBS; i++) {
		if (m->job[i] <= 0)
			continue;
		int st = proc_wait(m->job[i], MTA_CMD_TIMEOUT_MS);
		m->job[i] = 0;
		mta_job_status(&worst, ++ended, st);
	}
	return worst;
}

/* See mta.h. */
int mta_job_poll(struct mta_run *m)
{
	int ended = 0, st;

	for (unsigned i = 0; i < MTA_JOBS; i++) {
		if (m->job[i] <= 0)
			continue;
		int r = proc_reaped(m->job[i], &st);
		if (r == 0)
			continue;
		m->job[i] = 0;
		mta_job_status(&m->job_status, ++ended, r < 0 ? -1 : st);
	}
	return ended;
}

/* See mta.h. */
unsigned mta_jobs(const struct mta_run *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MTA_JOBS; i++)
		n += m->job[i] > 0;
	return n;
}

/* FNV-1a of the LEN octets of ID. */
static size_t mta_hash(const char *id, size_t len)
{
	size_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 16777619u;
	return h;
}

/*
 * The position of ID (LEN octets) among the N records at BASE, STRIDE octets apart, each starting
 * with its NUL-terminated ID; N if absent. Records are only ever appended (or all dropped), so the
 * index X takes in those added since the last call first. A queue of thousands of messages
 * otherwise cost a comparison per pair at every listing (5 000 queued: ~60 ms at ATRN); without
 * memory for the index, the linear search.
 */
static size_t mta_idx_find(struct mta_idx *x, const void *base, size_t stride, size_t n, const char *id,
			   size_t len)
{
	const char *b = base;

	if (n < x->n)
		x->n = 0;
	if (x->n == 0 && x->cap > 0)
		memset(x->slot, 0, x->cap * sizeof *x->slot);
	if (2 * (n + 1) > x->cap) {
		size_t cap = x->cap ? x->cap : 256;
		while (2 * (n + 1) > cap)
			cap *= 2;
		size_t *slot = calloc(cap, sizeof *slot);
		if (slot == NULL) {
			for (size_t i = 0; i < n; i++)
				if (strlen(b + i * stride) == len && !memcmp(b + i * stride, id, len))
					return i;
			return n;
		}
		free(x->slot);
		x->slot = slot;
		x->cap = cap;
		x->n = 0;
	}
	for (; x->n < n; x->n++) {
		const char *k = b + x->n * stride;
		size_t h = mta_hash(k, strlen(k)) & (x->cap - 1);
		while (x->slot[h] != 0)
			h = (h + 1) & (x->cap - 1);
		x->slot[h] = x->n + 1;
	}
	for (size_t h = mta_hash(id, len) & (x->cap - 1); x->slot[h] != 0; h = (h + 1) & (x->cap - 1)) {
		const char *k = b + (x->slot[h] - 1) * stride;
		if (strlen(k) == len && !memcmp(k, id, len))
			return x->slot[h] - 1;
	}
	return n;
}

/* See mta.h. */
struct mta_id *mta_id_get(struct mta_run *m, const char *id, bool create)
{
	size_t i = mta_idx_find(&m->idx, m->id, sizeof *m->id, m->nid, id, strlen(id));

	if (i < m->nid)
		return &m->id[i];
	if (!create || strlen(id) > PS_ID_MAX)
		return NULL;
	if (m->nid == m->capid) {
		size_t ncap = m->capid ? m->capid * 2 : 64;
		struct mta_id *n = realloc(m->id, ncap * sizeof *n);
		if (n == NULL)
			return NULL;
		m->id = n;
		m->capid = ncap;
	}
	struct mta_id *r = &m->id[m->nid++];
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", id);
	return r;
}

/* See mta.h. */
struct mta_found *mta_scan_found(struct mta_scan *s, const char *id, size_t len)
{
	size_t i = mta_idx_find(&s->idx, s->found, sizeof *s->found, s->nfound, id, len);

	if (i < s->nfound)
		return &s->found[i];
	if (len == 0 || len > PS_ID_MAX)
		return NULL;
	if (s->nfound == s->capfound) {
		size_t ncap = s->capfound ? s->capfound * 2 : 64;
		struct mta_found *n = realloc(s->found, ncap * sizeof *n);
		if (n == NULL) {
			s->bad = true;
			return NULL;
		}
		s->found = n;
		s->capfound = ncap;
	}
	struct mta_found *f = &s->found[s->nfound++];
	memset(f, 0, sizeof *f);
	memcpy(f->id, id, len);
	return f;
}

/* See mta.h. */
void mta_scan_reset(struct mta_scan *s)
{
	s->nfound = s->nids = s->idx.n = 0;
	s->rcpts_waiting = s->rcpts_moving = s->rcpts_held = 0;
	s->reason[0] = s->cur_id[0] = s->cur_reason[0] = '\0';
	s->cur = NULL;
	s->bad = false;
}

/* Free what S holds. */
static void mta_scan_free(struct mta_scan *s)
{
	free(s->found);
	free(s->ids);
	free(s->idx.slot);
	memset(s, 0, sizeof *s);
}

/* See mta.h. */
void mta_note_left(struct mta_run *m, const struct mta_scan *s)
{
	m->left = s->rcpts_waiting + s->rcpts_held;
	snprintf(m->left_why, sizeof m->left_why, "%s",
		 s->reason[0] ? s->reason : s->rcpts_held ? "on hold" : "");
}

/* See mta.h. */
void mta_run_free(struct mta_run *m)
{
	for (unsigned i = 0; i < MTA_JOBS; i++)
		if (m->job[i] > 0)
			proc_wait(m->job[i], 30000);
	free(m->id);
	free(m->idx.slot);
	mta_scan_free(&m->scan);
	memset(m, 0, sizeof *m);
}
