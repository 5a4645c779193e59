/*
 * handoff.c - from a granted ATRN to the provider's MTA delivering over the customer's socket.
 *
 * Postfix and Sendmail cannot safely be given the socket as stdio, so we keep it: one listening
 * unix socket per granted domain in run_dir (the MTA's transport for that domain points there),
 * the MTA's own queue-run command to release the held mail, and relay.c to carry the MTA's client
 * connections over the customer session. The MTA keeps every message until the customer has
 * accepted it; we store nothing. mta = exec is the literal shape instead: a configured program
 * gets the socket as fd 0/1.
 *
 * Trusts: the config and the MTA's commands; domain names (validated by domains.c) are the only
 * client-derived text that reaches a file name or an argv. Invariants: sockets exist only for
 * granted domains and only while their per-domain lock is held; one session per customer (flock,
 * which a crashed session releases by dying); every child is waited for.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"
#include "log.h"
#include "net.h"
#include "proc.h"
#include "relay.h"

#define HO_PATH_MAX 108           /* sun_path */
#define HO_REFLUSH_MAX 3          /* extra postqueue -s rounds for mail re-deferred by the flush race */
#define HO_CMD_TIMEOUT_MS 60000   /* postqueue / mailq must answer within this */

struct handoff {
	const struct config *cf;
	char *user;
	char **dom;                   /* granted domains */
	size_t n;
	int user_lock;                /* flock held for the whole session */
	int *dom_lock;
	int *lis;                     /* listening sockets, one per domain */
	pid_t runner;                 /* Sendmail queue run in progress, or 0 */
	size_t next_dom;              /* Sendmail: next domain to run */
	int reflushes;                /* Postfix: extra flush rounds used */
};

/* Recipient counts for the granted domains in the Postfix queue. */
struct pf_count {
	unsigned queued;      /* anywhere but hold */
	unsigned moving;      /* incoming or active: delivery still under way */
	unsigned held_back;   /* deferred only because the transport is deferred (flush race) */
};

/* argv for an MTA command, with optional config flag pair and extra args. */
struct ho_argv {
	char *v[16];
	int n;
};

/* Append one argument. */
static void argv_add(struct ho_argv *a, const char *s)
{
	if (a->n < 15)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

/* Lower-case domain part of ADDR (after the last '@'), or NULL. */
static const char *addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : NULL;
}

/* True if ADDR's domain is one of ours. */
static bool ho_ours(const struct handoff *h, const char *addr)
{
	const char *d = addr_domain(addr);
	size_t len;

	if (d == NULL)
		return false;
	len = strlen(d);
	while (len > 0 && (d[len - 1] == '>' || d[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < h->n; i++)
		if (strlen(h->dom[i]) == len && strncasecmp(h->dom[i], d, len) == 0)
			return true;
	return false;
}

/* Hand each complete line in BUF[0..*len) to FN; keep the unfinished rest at the front. */
static void ho_lines(char *buf, size_t *len, void (*fn)(struct handoff *, const char *, void *),
		     struct handoff *h, void *arg)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
		*nl = '\0';
		fn(h, start, arg);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
}

/*
 * Run ARGV and feed each line of its stdout to FN, the whole within HO_CMD_TIMEOUT_MS: a command
 * that hangs (postqueue waiting for showq) is killed and counts as failed. Returns the exit
 * status or -1; callers trust what FN gathered only on 0.
 */
static int ho_each_line(struct ho_argv *a, void (*fn)(struct handoff *, const char *, void *),
			struct handoff *h, void *arg)
{
	long long deadline = net_now_ms() + HO_CMD_TIMEOUT_MS;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	bool failed = false;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = proc_spawn(a->v, p[1]);
	close(p[1]);
	if (pid < 0) {
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
			log_msg(LOG_ERR, "%s: no answer within %d s; stopping it", a->v[0], HO_CMD_TIMEOUT_MS / 1000);
			failed = true;
			break;
		}
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);
			if (nb == NULL) {
				failed = true;
				break;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		ssize_t n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		ho_lines(buf, &len, fn, h, arg);
	}
	if (!failed && len > 0) {
		buf[len] = '\0';
		fn(h, buf, arg);
	}
	free(buf);
	close(p[0]);
	long long left = deadline - net_now_ms();
	int st = proc_wait(pid, failed || left < 0 ? 0 : (long)left);
	return failed ? -1 : st;
}

/* postqueue [-c dir] ARG... */
static void pf_argv(const struct handoff *h, struct ho_argv *a)
{
	a->n = 0;
	argv_add(a, h->cf->postqueue);
	if (h->cf->postfix_config_dir) {
		argv_add(a, "-c");
		argv_add(a, h->cf->postfix_config_dir);
	}
}

/* One JSON object of postqueue -j: count our recipients. */
static void pf_json_line(struct handoff *h, const char *line, void *arg)
{
	struct pf_count *c = arg;
	json_error_t err;
	json_t *msg = json_loads(line, 0, &err);

	if (msg == NULL)
		return;
	const char *q = json_string_value(json_object_get(msg, "queue_name"));
	json_t *rcpts = json_object_get(msg, "recipients");
	size_t i;
	json_t *r;
	json_array_foreach(rcpts, i, r) {
		const char *addr = json_string_value(json_object_get(r, "address"));
		const char *why = json_string_value(json_object_get(r, "delay_reason"));
		if (addr == NULL || q == NULL || !strcmp(q, "hold") || !ho_ours(h, addr))
			continue;
		c->queued++;
		if (!strcmp(q, "incoming") || !strcmp(q, "active") || !strcmp(q, "maildrop"))
			c->moving++;
		else if (why != NULL && strstr(why, "deferred transport") != NULL)
			c->held_back++;
	}
	json_decref(msg);
}

/* Count our recipients in the Postfix queue; -1 if postqueue failed. */
static int pf_scan(struct handoff *h, struct pf_count *c)
{
	struct ho_argv a;

	memset(c, 0, sizeof *c);
	pf_argv(h, &a);
	argv_add(&a, "-j");
	return ho_each_line(&a, pf_json_line, h, c) == 0 ? 0 : -1;
}

/* postqueue -s for each domain, one after another (parallel flushes race, see the notes). */
static int pf_flush(struct handoff *h)
{
	for (size_t i = 0; i < h->n; i++) {
		struct ho_argv a;
		pf_argv(h, &a);
		argv_add(&a, "-s");
		argv_add(&a, h->dom[i]);
		pid_t pid = proc_spawn(a.v, -1);
		int st = pid < 0 ? -1 : proc_wait(pid, HO_CMD_TIMEOUT_MS);
		if (st != 0) {
			log_msg(LOG_ERR, "postqueue -s %s failed (status %d)", h->dom[i], st);
			return -1;
		}
	}
	return 0;
}

/* Postfix is done when nothing is open or moving for our domains after an idle period. */
static int pf_done(struct handoff *h, unsigned conns, long long idle_ms)
{
	struct pf_count c;

	if (conns > 0 || idle_ms < (long long)h->cf->postfix_idle * 1000)
		return 0;
	if (pf_scan(h, &c) < 0)
		return -1;
	if (c.moving > 0)
		return 0;
	if (c.held_back > 0 && h->reflushes < HO_REFLUSH_MAX) {
		h->reflushes++;
		return pf_flush(h) < 0 ? -1 : 0;
	}
	return 1;
}

/* sendmail [-C cf] ARG... */
static void sm_argv(const struct handoff *h, struct ho_argv *a)
{
	a->n = 0;
	argv_add(a, h->cf->sendmail);
	if (h->cf->sendmail_cf) {
		argv_add(a, "-C");
		argv_add(a, h->cf->sendmail_cf);
	}
}

/*
 * One line of sendmail -bp -v: recipient lines are indented and hold one address in full (without
 * -v sendmail cuts addresses to 38 characters). It may contain blanks ("john doe"@dom) or come as
 * "Name <addr>"; indented lines starting with "(" are status notes, not recipients.
 */
static void sm_list_line(struct handoff *h, const char *line, void *arg)
{
	unsigned *count = arg;
	char addr[512];

	if (line[0] != ' ' && line[0] != '\t')
		return;
	const char *start = line + strspn(line, " \t");
	if (*start == '(')
		return;
	const char *lt = strchr(start, '<');
	if (lt != NULL)
		start = lt + 1;
	size_t n = strcspn(start, lt ? ">\r\n" : "\r\n");
	while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof addr)
		return;
	memcpy(addr, start, n);
	addr[n] = '\0';
	if (ho_ours(h, addr))
		(*count)++;
}

/* Count our recipients in the Sendmail queue; -1 if the listing failed. */
static int sm_scan(struct handoff *h, unsigned *count)
{
	*count = 0;
	for (size_t i = 0; i < h->n; i++) {
		struct ho_argv a;
		char sel[300];
		snprintf(sel, sizeof sel, "-qR@%s", h->dom[i]);
		sm_argv(h, &a);
		argv_add(&a, "-bp");
		argv_add(&a, "-v");
		argv_add(&a, sel);
		if (ho_each_line(&a, sm_list_line, h, count) != 0)
			return -1;
	}
	return 0;
}

/* Start the queue run for the next domain; 0 if none left. */
static int sm_next_run(struct handoff *h)
{
	struct ho_argv a;
	char sel[300];

	if (h->next_dom >= h->n)
		return 0;
	snprintf(sel, sizeof sel, "-qR@%s", h->dom[h->next_dom++]);
	sm_argv(h, &a);
	argv_add(&a, "-qf");
	argv_add(&a, sel);
	h->runner = proc_spawn(a.v, -1);
	if (h->runner < 0) {
		h->runner = 0;
		log_msg(LOG_ERR, "cannot start %s: %s", h->cf->sendmail, strerror(errno));
		return -1;
	}
	return 1;
}

/* Sendmail is done when every domain's queue run has exited and no connection is open. */
static int sm_done(struct handoff *h, unsigned conns)
{
	int st;

	if (h->runner > 0) {
		int r = proc_reaped(h->runner, &st);
		if (r == 0)
			return 0;
		h->runner = 0;
		if (r < 0 || st != 0)
			log_msg(LOG_WARNING, "sendmail queue run exited with status %d", r < 0 ? -1 : st);
		int more = sm_next_run(h);
		if (more != 0)
			return more < 0 ? -1 : 0;
	}
	return conns == 0;
}

/* Lock NAME in run_dir (flock; a dead holder releases it). -1 busy, -2 error. */
static int ho_lock(const struct config *cf, const char *name)
{
	struct stat a, b;
	char path[4096];

	snprintf(path, sizeof path, "%s/%s", cf->run_dir, name);
	for (int tries = 0; tries < 5; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -2;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			return e == EWOULDBLOCK ? -1 : -2;
		}
		/* The holder before us may have unlinked the file after we opened it: retry on the new one. */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
	return -1;
}

/* Release a lock taken by ho_lock and remove its file. */
static void ho_unlock(const struct config *cf, const char *name, int fd)
{
	char path[4096];

	if (fd < 0)
		return;
	snprintf(path, sizeof path, "%s/%s", cf->run_dir, name);
	unlink(path);
	close(fd);
}

/* Lock file name for a user: hex, so any SASL name makes a safe file name. */
static void ho_user_lockname(const char *user, const char *kind, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, ".%s.", kind);
	for (const unsigned char *p = (const unsigned char *)user; *p && o + 3 < len; p++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", *p);
}

/* Enforce atrn_interval: 1 if this customer asked too recently; records this request. */
static int ho_too_soon(const struct handoff *h)
{
	char name[600], path[4096];
	struct stat st;
	time_t now = time(NULL);

	if (h->cf->atrn_interval == 0)
		return 0;
	ho_user_lockname(h->user, "stamp", name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", h->cf->run_dir, name);
	int soon = stat(path, &st) == 0 && now - st.st_mtime < (time_t)h->cf->atrn_interval;
	if (!soon) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
	}
	return soon;
}

/* Bind and listen on run_dir/DOMAIN; the MTA's client (Postfix runs it as user postfix) must connect. */
static int ho_bind(const struct config *cf, const char *domain)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "%s/%s", cf->run_dir, domain) >=
	    sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(sun.sun_path);  /* stale from a crashed session: we hold the domain lock */
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(sun.sun_path, 0666) < 0 ||
	    listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		unlink(sun.sun_path);
		errno = e;
		return -1;
	}
	return fd;
}

/* Undo everything prepare did. */
static void ho_release(struct handoff *h)
{
	char name[600];

	if (h == NULL)
		return;
	/* Sockets first: a runner waiting in their backlog then fails at once and defers. */
	for (size_t i = 0; h->lis && i < h->n; i++)
		if (h->lis[i] >= 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", h->cf->run_dir, h->dom[i]);
			unlink(path);
			close(h->lis[i]);
		}
	if (h->runner > 0)
		proc_wait(h->runner, 30000);
	for (size_t i = 0; i < h->n; i++) {
		if (h->dom_lock) {
			snprintf(name, sizeof name, ".dom.%s", h->dom[i]);
			ho_unlock(h->cf, name, h->dom_lock[i]);
		}
		free(h->dom[i]);
	}
	ho_user_lockname(h->user, "user", name, sizeof name);
	ho_unlock(h->cf, name, h->user_lock);
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
	return h;
}

/* Is there mail for the granted domains? 1 yes, 0 no, -1 the probe failed. */
static int ho_probe(struct handoff *h)
{
	if (h->cf->mta == CF_MTA_POSTFIX) {
		struct pf_count c;
		return pf_scan(h, &c) < 0 ? -1 : c.queued > 0;
	}
	unsigned count;
	return sm_scan(h, &count) < 0 ? -1 : count > 0;
}

/* See handoff.h. */
enum ho_status handoff_prepare(const struct config *cf, const char *user,
			       char *const *domains, size_t n, struct handoff **hp,
			       char *why, size_t whylen)
{
	char name[600];
	struct handoff *h;
	int fd;

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
	ho_user_lockname(user, "user", name, sizeof name);
	if ((fd = ho_lock(cf, name)) < 0) {
		snprintf(why, whylen, fd == -1 ? "another session for this customer is running" :
			 "cannot lock in run_dir %s: %s", cf->run_dir, strerror(errno));
		ho_release(h);
		return fd == -1 ? HO_BUSY : HO_TEMPFAIL;
	}
	h->user_lock = fd;
	if (ho_too_soon(h)) {
		snprintf(why, whylen, "asked again within atrn_interval (%u s)", cf->atrn_interval);
		ho_release(h);
		return HO_BUSY;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof name, ".dom.%s", h->dom[i]);
		if ((fd = ho_lock(cf, name)) < 0) {
			snprintf(why, whylen, fd == -1 ? "domain %s is being delivered by another session" :
				 "cannot lock domain %s", h->dom[i]);
			ho_release(h);
			return fd == -1 ? HO_BUSY : HO_TEMPFAIL;
		}
		h->dom_lock[i] = fd;
	}
	if (cf->mta != CF_MTA_EXEC) {
		int mail = ho_probe(h);
		if (mail <= 0) {
			snprintf(why, whylen, mail < 0 ? "queue probe failed (%s)" : "no mail",
				 cf->mta == CF_MTA_POSTFIX ? cf->postqueue : cf->sendmail);
			ho_release(h);
			return mail < 0 ? HO_TEMPFAIL : HO_NOMAIL;
		}
		const char *runner = cf->mta == CF_MTA_POSTFIX ? cf->postqueue : cf->sendmail;
		if (access(runner, X_OK) != 0) {
			snprintf(why, whylen, "%s: %s", runner, strerror(errno));
			ho_release(h);
			return HO_TEMPFAIL;
		}
		for (size_t i = 0; i < n; i++)
			if ((h->lis[i] = ho_bind(cf, h->dom[i])) < 0) {
				snprintf(why, whylen, "cannot listen on %s/%s: %s", cf->run_dir, h->dom[i],
					 strerror(errno));
				ho_release(h);
				return HO_TEMPFAIL;
			}
	}
	*hp = h;
	return HO_READY;
}

/* See handoff.h: a runner that cannot start costs a 451, not a 250 followed by nothing. */
enum ho_status handoff_start(struct handoff *h, char *why, size_t whylen)
{
	const struct config *cf = h->cf;

	if (cf->mta == CF_MTA_EXEC)
		return HO_READY;
	if ((cf->mta == CF_MTA_POSTFIX ? pf_flush(h) : sm_next_run(h)) < 0) {
		snprintf(why, whylen, "cannot start the queue run (%s)",
			 cf->mta == CF_MTA_POSTFIX ? cf->postqueue : cf->sendmail);
		ho_release(h);
		return HO_TEMPFAIL;
	}
	return HO_READY;
}

/* mta = exec: the configured program gets the socket as fd 0/1; we wait for it. */
static int ho_exec(struct handoff *h, int in_fd, int out_fd, struct ho_stats *st)
{
	char *copy = strdup(h->cf->exec_command), *save = NULL;
	char doms[4096] = "";
	struct ho_argv a = { .n = 0 };

	if (copy == NULL)
		return -1;
	for (size_t i = 0, o = 0; i < h->n && o < sizeof doms; i++)
		o += (size_t)snprintf(doms + o, sizeof doms - o, "%s%s", i ? "," : "", h->dom[i]);
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		argv_add(&a, !strcmp(t, "%d") ? doms : !strcmp(t, "%u") ? h->user : t);
	pid_t pid = proc_exec(a.v, in_fd, out_fd);
	free(copy);
	if (pid < 0)
		return -1;
	int status = proc_wait_local(pid, (long)h->cf->atrn_timeout * 1000 * 6);
	st->result = status == 0 ? "done" : "exec-failed";
	return status == 0 ? 0 : -1;
}

/* See handoff.h. */
int handoff_run(struct handoff *h, int in_fd, int out_fd, struct ho_stats *st)
{
	const struct config *cf = h->cf;
	int rc = -1;

	memset(st, 0, sizeof *st);
	if (cf->mta == CF_MTA_EXEC) {
		rc = ho_exec(h, in_fd, out_fd, st);
		ho_release(h);
		return rc;
	}
	struct relay *r = relay_new(in_fd, out_fd, cf->hostname ? cf->hostname : "localhost", cf->atrn_timeout);
	if (r == NULL) {
		st->result = "no-memory";
		ho_release(h);
		return -1;
	}
	enum relay_rc rr = relay_greet(r, cf->idle_timeout);
	for (size_t i = 0; i < h->n && rr == RELAY_OK; i++)
		relay_listen(r, h->lis[i], cf->mta == CF_MTA_POSTFIX);
	int done = 0;
	while (rr == RELAY_OK && done == 0) {
		rr = relay_step(r, 200);
		if (rr == RELAY_OK && relay_idle_ms(r) > (long long)cf->atrn_timeout * 1000) {
			log_msg(LOG_NOTICE, "reversed: nothing from the MTA for %u s; ending", cf->atrn_timeout);
			break;
		}
		if (rr == RELAY_OK)
			done = cf->mta == CF_MTA_POSTFIX ? pf_done(h, relay_conns(r), relay_idle_ms(r)) :
				sm_done(h, relay_conns(r));
	}
	/* No new MTA connection from here on: the MTA defers what it has not handed over. */
	relay_stop_listening(r);
	for (size_t i = 0; i < h->n; i++)
		h->lis[i] = -1;
	relay_stats(r, st);
	if (rr == RELAY_OK) {
		relay_quit(r);
		st->result = done > 0 ? "done" : "mta-error";
		rc = done > 0 ? 0 : -1;
	} else {
		st->result = rr == RELAY_ABORT ? "aborted" : "customer-lost";
	}
	relay_free(r);
	if (h->runner > 0 && rr != RELAY_OK)
		proc_kill(h->runner);
	for (size_t i = 0; i < h->n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", cf->run_dir, h->dom[i]);
		unlink(path);
	}
	ho_release(h);
	return rc;
}

/* See handoff.h. */
void handoff_abort(struct handoff *h)
{
	ho_release(h);
}
