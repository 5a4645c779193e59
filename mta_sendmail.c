/*
 * mta_sendmail.c - Sendmail behind odmrd: probe with `sendmail -bp -v`, run exactly the queue
 * IDs whose recipients are in the granted domains, and end the session when the run is over.
 *
 * Sendmail's -qR matches substrings (-qR@a.example also selects bob@a.example.com), so the
 * probe reads the whole queue and picks messages by exact recipient domain; the queue run is
 * `sendmail -qf -qIID -qIID ...` (several -qI in one run are ORed: verified with 8.17), up to
 * PS_ITEMS_MAX IDs per run, MTA_JOBS runs at once on disjoint IDs (each holds its queue files'
 * locks; the relay lets one transaction at a time through). -qI is a substring match too: an ID
 * contained in another listed ID is left out of the run (and counted as left) rather than risk
 * selecting the other message. IDs are 8 characters of time and sequence plus the pid in at
 * least 6 digits, so that takes two messages of the same second and sequence - it does not
 * happen in practice, and would at worst make Sendmail try an envelope whose recipients
 * outside the granted domains the relay refuses anyway.
 *
 * A run keeps its connection for the whole run and QUITs it before it exits: the session is
 * over when the last run has exited and a last listing shows no new mail of ours (mail queued
 * during the session gets up to SM_ROUNDS_MAX further rounds of runs).
 *
 * Trusts: sendmail's listing only as far as the line shapes below; a recipient is ours by
 * exact domain.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "mta.h"

#define SM_ROUNDS_MAX 3   /* further runs for mail of ours queued during the session */
/*
 * Two runs at once only for messages averaging at most this: they hide each message's round
 * trips (1 000 x 10 KiB: 798 -> 1 047 msg/s), but cost big ones (30 x 5 MB: 0.94x -> 0.88x direct),
 * whose time goes into moving the data (bench/analysis.md, "Relay throughput").
 */
#define SM_SPLIT_SIZE_MAX (1024 * 1024)

/* Length of the queue ID a message line starts with ("ID[*X-] size ..."), or 0. */
static size_t sm_id_len(const char *line)
{
	size_t n = 0;

	while (isalnum((unsigned char)line[n]))
		n++;
	size_t k = n;
	if (line[k] == '*' || line[k] == 'X' || line[k] == '-')
		k++;
	if (n < 8 || n > PS_ID_MAX || (line[k] != ' ' && line[k] != '\t'))
		return 0;
	k += strspn(line + k, " \t");
	return isdigit((unsigned char)line[k]) ? n : 0;
}

/* Remember ID among every ID listed. */
static void sm_add_id(struct mta_scan *s, const char *id, size_t len)
{
	if (s->nids == s->capids) {
		size_t ncap = s->capids ? s->capids * 2 : 64;
		char (*n)[PS_ID_MAX + 1] = realloc(s->ids, ncap * sizeof *n);
		if (n == NULL) {
			s->bad = true;
			return;
		}
		s->ids = n;
		s->capids = ncap;
	}
	memcpy(s->ids[s->nids], id, len);
	s->ids[s->nids++][len] = '\0';
}

/*
 * See mta.h. A message starts with an unindented "ID size [priority] date sender" line; its
 * recipients follow on indented lines, one address each and in full with -v (it may contain
 * blanks, "john doe"@dom, or come as "Name <addr>"); indented lines starting with "(" are status
 * notes ("(Deferred: ...)"), the reason we keep for the warning.
 */
void sm_scan_line(struct mta_run *m, const char *line, struct mta_scan *s)
{
	size_t n = sm_id_len(line);

	if (n > 0) {
		memcpy(s->cur_id, line, n);
		s->cur_id[n] = '\0';
		s->cur_size = strtoull(line + n + strcspn(line + n, "0123456789"), NULL, 10);
		s->cur = NULL;
		s->cur_reason[0] = '\0';
		sm_add_id(s, line, n);
		return;
	}
	if ((line[0] != ' ' && line[0] != '\t') || s->cur_id[0] == '\0')
		return;
	const char *start = line + strspn(line, " \t");
	if (*start == '(') {
		/* "(Deferred: 450 ... (test))": up to the last ')', the text may hold its own */
		const char *end = strrchr(start, ')');
		int k = end ? (int)(end - start - 1) : (int)strcspn(start + 1, "\r\n");
		snprintf(s->cur_reason, sizeof s->cur_reason, "%.*s", k, start + 1);
		return;
	}
	if (!strncmp(start, "Total requests:", 15))
		return;
	const char *lt = strchr(start, '<');
	if (lt != NULL)
		start = lt + 1;
	size_t len = strcspn(start, lt ? ">\r\n" : "\r\n");
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
		len--;
	if (len == 0 || !mta_ours(m, start, len))
		return;
	if (s->cur == NULL && (s->cur = mta_scan_found(s, s->cur_id, strlen(s->cur_id))) != NULL)
		s->cur->size = s->cur_size;
	if (s->cur == NULL)
		return;
	s->cur->where = MQ_WAITING;
	s->cur->rcpts++;
	s->rcpts_waiting++;
	if (s->reason[0] == '\0' && s->cur_reason[0] != '\0')
		snprintf(s->reason, sizeof s->reason, "%s", s->cur_reason);
}

/*
 * See mta.h. Only a longer ID can contain another, and a queue's IDs are nearly all of one length
 * (8 characters and a pid of 6 digits or more): with the longest length known first, a queue of
 * same-length IDs costs one pass, not a strstr per pair (1 000 queued: 1 M of them at ATRN).
 */
void sm_scan_end(struct mta_scan *s)
{
	size_t k = 0, longest = 0;

	s->cur = NULL;
	for (size_t j = 0; j < s->nids; j++)
		if (strlen(s->ids[j]) > longest)
			longest = strlen(s->ids[j]);
	for (size_t i = 0; i < s->nfound; i++) {
		bool inside = false;
		size_t len = strlen(s->found[i].id);
		for (size_t j = 0; j < s->nids && !inside && len < longest; j++)
			inside = strlen(s->ids[j]) > len && strstr(s->ids[j], s->found[i].id);
		if (inside)
			log_msg(LOG_WARNING, "sendmail: queue ID %s is part of another queue ID; "
				"not run this time (-qI matches substrings)", s->found[i].id);
		else
			s->found[k++] = s->found[i];
	}
	s->nfound = k;
}

/* List the queue and apply the substring rule. */
static int sm_list(struct mta_run *m)
{
	if (mta_list(m, sm_scan_line) < 0)
		return -1;
	sm_scan_end(&m->scan);
	return 0;
}

/* Probe: any runnable message of ours. */
static int sm_probe(struct mta_run *m)
{
	return sm_list(m) < 0 ? -1 : m->scan.nfound > 0;
}

/* Mark the listed messages of ours that were never run; how many. */
static unsigned sm_take_listing(struct mta_run *m)
{
	unsigned fresh = 0;

	for (size_t i = 0; i < m->scan.nfound; i++) {
		struct mta_id *id = mta_id_get(m, m->scan.found[i].id, true);
		if (id != NULL && id->released == 0 && !id->pending) {
			id->pending = true;
			id->size = m->scan.found[i].size;
			m->npending++;
			fresh++;
		}
	}
	return fresh;
}

/*
 * Start queue runs for the pending IDs in the free job slots (one slot for big messages), the IDs
 * shared out between them (at most PS_ITEMS_MAX per run): 1 started one, 0 none pending or no
 * slot free, -1 failed with nothing running.
 */
static int sm_run_next(struct mta_run *m)
{
	const char *items[PS_ITEMS_MAX];
	unsigned pending = 0, jobs = MTA_JOBS;
	unsigned long long octets = 0;
	int started = 0;

	if (m->npending == 0 || mta_jobs(m) == MTA_JOBS)
		return 0;
	for (size_t i = 0; i < m->nid; i++)
		if (m->id[i].pending) {
			pending++;
			octets += m->id[i].size;
		}
	if (pending > 0 && octets / pending > SM_SPLIT_SIZE_MAX)
		jobs = 1;
	while (pending > 0 && mta_jobs(m) < jobs) {
		unsigned share = (pending + jobs - mta_jobs(m) - 1) / (jobs - mta_jobs(m)), n = 0;
		for (size_t i = 0; i < m->nid && n < share && n < PS_ITEMS_MAX; i++)
			if (m->id[i].pending) {
				m->id[i].pending = false;
				m->id[i].released++;
				items[n++] = m->id[i].id;
			}
		pending -= n;
		m->npending -= n;
		if (mta_job_start(m, PS_RELEASE, items, n) < 0) {
			/* Those IDs stay queued (counted at QUIT); a run already going carries on. */
			log_msg(LOG_ERR, "cannot start a sendmail queue run (%s)", m->cf->sendmail);
			m->jobs_failed++;
			return mta_jobs(m) > 0 ? started : -1;
		}
		started = 1;
	}
	return started;
}

/* Before the 250: start the first run (it continues after the turn). */
static int sm_start(struct mta_run *m)
{
	sm_take_listing(m);
	return sm_run_next(m) < 0 ? -1 : 0;
}

/* See mta.h: the next run when one ends; at the end a listing for mail queued meanwhile. */
static int sm_finished(struct mta_run *m, const struct mta_tick *t)
{
	if (mta_job_poll(m) > 0 && m->job_status != 0) {
		/*
		 * `sendmail -qf` exits with its last message's delivery status (seen with 8.17: 67 when
		 * it bounced, 75 when it was deferred, 0 when it went through, whatever came before):
		 * those are that message's fate, in its msg line already, not a failed run.
		 */
		bool last_msg = m->job_status == EX_NOUSER || m->job_status == EX_TEMPFAIL;
		log_msg(last_msg ? LOG_INFO : LOG_WARNING, "sendmail queue run exited with status %d%s",
			m->job_status, last_msg ? " (its last message's delivery status)" : "");
		if (!last_msg)
			m->jobs_failed++;
	}
	if (sm_run_next(m) < 0)
		return -1;
	if (mta_jobs(m) > 0 || t->conns > 0 || !t->quiet)
		return 0;
	if (sm_list(m) < 0) {
		log_msg(LOG_WARNING, "sendmail: the closing queue listing failed; what is left is not known");
		return 1;
	}
	if (sm_take_listing(m) > 0 && m->rounds < SM_ROUNDS_MAX) {
		m->rounds++;
		return sm_run_next(m) < 0 ? -1 : 0;
	}
	mta_note_left(m, &m->scan);
	return 1;
}

const struct mta_ops mta_sendmail_ops = { "sendmail", sm_probe, sm_start, sm_finished };
