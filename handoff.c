/*
 * handoff.c - from a granted ATRN to the provider's MTA delivering over the customer's socket.
 *
 * Postfix and Sendmail cannot safely be given the socket as stdio, so we keep it: one listening
 * unix socket per granted domain in run_dir (rundir.c; the MTA's transport for that domain points
 * there), the MTA releases exactly the queued messages of those domains (mta_postfix.c,
 * mta_sendmail.c behind struct mta_ops), and relay.c carries the MTA's client connections over
 * the customer session. The MTA keeps every message until the customer has accepted it; we store
 * nothing. mta = exec is the literal shape instead: a configured program gets the socket as fd 0/1.
 *
 * Trusts: the config and the MTA's commands; domain names (validated by domains.c) are the only
 * client-derived text that reaches a file name or a request. Invariants: nothing is locked or
 * bound in a run_dir that others can use; sockets exist only for granted domains and only while
 * their per-domain lock is held; one session per customer (flock, which a crashed session
 * releases by dying); every child is waited for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "handoff.h"
#include "log.h"
#include "mta.h"
#include "net.h"
#include "proc.h"
#include "relay.h"
#include "rundir.h"

#define HO_STEP_MS 20   /* longest relay wait between looks at the queue run */

struct handoff {
	const struct config *cf;
	const struct mta_ops *ops;    /* NULL for mta = exec */
	struct mta_run run;
	char *user;
	char **dom;                   /* granted domains */
	size_t n;
	int user_lock;                /* flock held for the whole session */
	int *dom_lock;
	int *lis;                     /* listening sockets, one per domain */
	uid_t mta_uid;                /* the account besides root that may deliver to them */
};

/* Undo everything prepare did. */
static void ho_release(struct handoff *h)
{
	char name[600];

	if (h == NULL)
		return;
	/* Sockets first: a runner waiting in their backlog then fails at once and defers. */
	for (size_t i = 0; h->lis && i < h->n; i++)
		if (h->lis[i] >= 0)
			rd_unbind(h->cf, h->dom[i], h->lis[i]);
	mta_run_free(&h->run);
	for (size_t i = 0; i < h->n; i++) {
		if (h->dom_lock) {
			snprintf(name, sizeof name, ".dom.%s", h->dom[i]);
			rd_unlock(h->cf, name, h->dom_lock[i]);
		}
		free(h->dom[i]);
	}
	rd_keyname("user", h->user ? h->user : "", name, sizeof name);
	rd_unlock(h->cf, name, h->user_lock);
	free(h->dom);
	free(h->lis);
	free(h->dom_lock);
	free(h->user);
	free(h);
}

/* Copy the request into a fresh handoff. */
static struct handoff *ho_new(const struct config *cf, const char *user, char *const *domains, size_t n)
{
	struct handoff *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->cf = cf;
	h->ops = cf->mta == CF_MTA_POSTFIX ? &mta_postfix_ops :
		 cf->mta == CF_MTA_SENDMAIL ? &mta_sendmail_ops : NULL;
	h->user_lock = -1;
	h->user = strdup(user);
	h->dom = calloc(n, sizeof *h->dom);
	h->lis = malloc(n * sizeof *h->lis);
	h->dom_lock = malloc(n * sizeof *h->dom_lock);
	if (h->user == NULL || h->dom == NULL || h->lis == NULL || h->dom_lock == NULL) {
		ho_release(h);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		h->lis[i] = h->dom_lock[i] = -1;
		if ((h->dom[i] = strdup(domains[i])) == NULL) {
			ho_release(h);
			return NULL;
		}
		h->n = i + 1;
	}
	h->run.cf = cf;
	h->run.dom = h->dom;
	h->run.n = h->n;
	return h;
}

/* Give up: release what was taken; STATUS for the caller. */
static enum ho_status ho_fail(struct handoff *h, enum ho_status status)
{
	ho_release(h);
	return status;
}

/*
 * Take the customer's lock, lock every granted domain, then enforce atrn_interval: a request
 * refused because another session holds a domain never reaches the MTA, so it must not start
 * the interval (odmrd.conf(5)); the stamp is written only by a request that goes on to the probe.
 */
static enum ho_status ho_lock_all(struct handoff *h, char *why, size_t whylen)
{
	char name[600];
	int fd;

	rd_keyname("user", h->user, name, sizeof name);
	if ((fd = rd_lock(h->cf, name)) < 0) {
		snprintf(why, whylen, fd == -1 ? "another session for this customer is running" :
			 "cannot lock in run_dir %s: %s", h->cf->run_dir, strerror(errno));
		return fd == -1 ? HO_BUSY : HO_TEMPFAIL;
	}
	h->user_lock = fd;
	for (size_t i = 0; i < h->n; i++) {
		snprintf(name, sizeof name, ".dom.%s", h->dom[i]);
		if ((fd = rd_lock(h->cf, name)) < 0) {
			snprintf(why, whylen, fd == -1 ? "domain %s is being delivered by another session" :
				 "cannot lock domain %s", h->dom[i]);
			return fd == -1 ? HO_BUSY : HO_TEMPFAIL;
		}
		h->dom_lock[i] = fd;
	}
	if (rd_too_soon(h->cf, h->user)) {
		snprintf(why, whylen, "asked again within atrn_interval (%u s)", h->cf->atrn_interval);
		return HO_BUSY;
	}
	return HO_READY;
}

/* Probe the queue and bind the sockets the MTA will deliver to. */
static enum ho_status ho_probe_and_bind(struct handoff *h, char *why, size_t whylen)
{
	const struct config *cf = h->cf;
	const char *prog = cf->mta == CF_MTA_POSTFIX ? cf->postqueue : cf->sendmail;
	gid_t mta_gid;

	int mail = h->ops->probe(&h->run);
	if (mail <= 0) {
		snprintf(why, whylen, mail < 0 ? "queue probe failed (%s)" : "no mail", prog);
		return mail < 0 ? HO_TEMPFAIL : HO_NOMAIL;
	}
	if (access(prog, X_OK) != 0) {
		snprintf(why, whylen, "%s: %s", prog, strerror(errno));
		return HO_TEMPFAIL;
	}
	if (rd_mta_ids(cf, &h->mta_uid, &mta_gid, why, whylen) < 0 ||
	    rd_check_group(cf, h->mta_uid, mta_gid, why, whylen) < 0)
		return HO_TEMPFAIL;
	for (size_t i = 0; i < h->n; i++)
		if ((h->lis[i] = rd_bind(cf, h->dom[i])) < 0) {
			snprintf(why, whylen, "cannot listen on %s/%s: %s", cf->run_dir, h->dom[i], strerror(errno));
			return HO_TEMPFAIL;
		}
	return HO_READY;
}

/* See handoff.h. */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen)
{
	struct handoff *h;
	enum ho_status st;

	*hp = NULL;
	if (cf->mta == CF_MTA_EXEC) {
		char prog[4096];
		snprintf(prog, sizeof prog, "%.*s", (int)strcspn(cf->exec_command, " \t"), cf->exec_command);
		if (access(prog, X_OK) != 0) {
			snprintf(why, whylen, "exec_command %s: %s", prog, strerror(errno));
			return HO_TEMPFAIL;
		}
	}
	if ((h = ho_new(cf, user, domains, n)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return HO_TEMPFAIL;
	}
	if (rd_check(cf, why, whylen) < 0)
		return ho_fail(h, HO_TEMPFAIL);
	if ((st = ho_lock_all(h, why, whylen)) != HO_READY)
		return ho_fail(h, st);
	if (h->ops != NULL && (st = ho_probe_and_bind(h, why, whylen)) != HO_READY)
		return ho_fail(h, st);
	*hp = h;
	return HO_READY;
}

/* See handoff.h: a queue run that cannot start costs a 451, not a 250 followed by nothing. */
enum ho_status handoff_start(struct handoff *h, char *why, size_t whylen)
{
	const struct config *cf = h->cf;

	if (h->ops == NULL)
		return HO_READY;
	if (h->ops->start(&h->run) < 0) {
		snprintf(why, whylen, "cannot start the queue run (%s)",
			 cf->mta == CF_MTA_POSTFIX ? cf->postqueue : cf->sendmail);
		ho_release(h);
		return HO_TEMPFAIL;
	}
	return HO_READY;
}

/* mta = exec: the configured program gets the (plain) socket as fd 0/1; we wait for it. */
static int ho_exec(struct handoff *h, int fd, struct ho_stats *st)
{
	char *copy = strdup(h->cf->exec_command), *save = NULL;
	char doms[4096] = "";
	char *argv[16];
	int argc = 0;

	if (copy == NULL)
		return -1;
	for (size_t i = 0, o = 0; i < h->n && o < sizeof doms; i++)
		o += (size_t)snprintf(doms + o, sizeof doms - o, "%s%s", i ? "," : "", h->dom[i]);
	for (char *t = strtok_r(copy, " \t", &save); t && argc < 15; t = strtok_r(NULL, " \t", &save))
		argv[argc++] = !strcmp(t, "%d") ? doms : !strcmp(t, "%u") ? h->user : t;
	argv[argc] = NULL;
	pid_t pid = proc_exec(argv, fd, fd);
	free(copy);
	if (pid < 0)
		return -1;
	int status = proc_wait_local(pid, (long)h->cf->atrn_timeout * 1000 * 6);
	st->result = status == 0 ? "done" : "exec-failed";
	return status == 0 ? 0 : -1;
}

/* Relay until the MTA module says the mail is out (1), it failed (-1), or the relay ends. */
static enum relay_rc ho_relay(struct handoff *h, struct relay *r, int *done)
{
	const struct config *cf = h->cf;

	/* The relay owns the listeners from here on, even when the greeting fails (it closes them). */
	relay_allow_peer(r, h->mta_uid);
	relay_set_user(r, h->user);
	for (size_t i = 0; i < h->n; i++)
		relay_listen(r, h->lis[i], cf->mta == CF_MTA_POSTFIX, h->dom[i]);
	enum relay_rc rr = relay_greet(r, cf->idle_timeout);
	*done = 0;
	while (rr == RELAY_OK && *done == 0) {
		/* A queue run's end is the moment to start the next one (or QUIT): no HO_STEP_MS lag. */
		int watch[MTA_JOBS];
		unsigned nw = 0;
		for (unsigned i = 0; i < MTA_JOBS; i++)
			if (h->run.job[i] > 0)
				watch[nw++] = proc_job_fd(h->run.job[i]);
		relay_watch(r, watch, nw);
		rr = relay_step(r, HO_STEP_MS);
		if (rr != RELAY_OK)
			break;
		if (relay_idle_ms(r) > (long long)cf->atrn_timeout * 1000) {
			log_msg(LOG_NOTICE, "reversed: nothing from the MTA for %u s; ending", cf->atrn_timeout);
			*done = -1;
			break;
		}
		struct mta_tick t = { relay_quiet(r), relay_idle_ms(r), relay_conns(r) };
		*done = h->ops->finished(&h->run, &t);
	}
	return rr;
}

/* At QUIT: say how much mail of the granted domains is still queued, and why if we know. */
static void ho_warn_left(const struct handoff *h)
{
	char doms[600] = "", esc[LOG_ESC_SIZE];
	const struct mta_run *m = &h->run;

	if (m->left == 0)
		return;
	for (size_t i = 0, o = 0; i < h->n && o < sizeof doms; i++)
		o += (size_t)snprintf(doms + o, sizeof doms - o, "%s%s", i ? "," : "", h->dom[i]);
	/* The reason may quote the customer's own reply text: escaped. */
	log_msg(LOG_WARNING, "reversed: %u recipient(s) for %s still queued at QUIT%s%s%s",
		m->left, doms, m->jobs_failed ? " (a release or queue run failed, see above)" : "",
		m->left_why[0] ? "; e.g. " : "",
		m->left_why[0] ? log_esc_text(m->left_why, strlen(m->left_why), esc, sizeof esc) : "");
}

/* See handoff.h. */
int handoff_run(struct handoff *h, struct conn *cust, struct ho_stats *st)
{
	const struct config *cf = h->cf;
	int rc = -1, done = 0;

	memset(st, 0, sizeof *st);
	if (h->ops == NULL) {
		rc = ho_exec(h, conn_fd(cust), st);
		ho_release(h);
		return rc;
	}
	long long cap = net_now_ms() + (long long)cf->max_session_time * 1000;
	struct relay *r = relay_new(cust, cf->hostname ? cf->hostname : "localhost", cf->atrn_timeout, cap);
	if (r == NULL) {
		st->result = "no-memory";
		ho_release(h);
		return -1;
	}
	enum relay_rc rr = ho_relay(h, r, &done);
	/* No new MTA connection from here on: the MTA defers what it has not handed over. */
	relay_stop_listening(r);
	for (size_t i = 0; i < h->n; i++) {
		rd_unbind(cf, h->dom[i], -1);
		h->lis[i] = -1;
	}
	relay_stats(r, st);
	if (rr == RELAY_OK) {
		relay_quit(r);
		st->result = done > 0 ? "done" : "mta-error";
		rc = done > 0 ? 0 : -1;
		if (done > 0)
			ho_warn_left(h);
	} else if (rr == RELAY_EXPIRED || relay_expired(r)) {
		log_msg(LOG_NOTICE, "reversed: max_session_time (%u s) reached; MTA connections dropped "
			"unanswered, nothing more sent to the customer", cf->max_session_time);
		st->result = "expired";
	} else {
		st->result = rr == RELAY_ABORT ? "aborted" : "customer-lost";
	}
	/* Idle cached MTA connections are closed here, unanswered: no transaction is open on them. */
	relay_free(r);
	for (unsigned i = 0; i < MTA_JOBS && done <= 0; i++)
		if (h->run.job[i] > 0)
			proc_kill(h->run.job[i]);
	ho_release(h);
	return rc;
}

/* See handoff.h. */
void handoff_abort(struct handoff *h)
{
	ho_release(h);
}
