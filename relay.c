/*
 * relay.c - the reversed state: the MTA's client connections carried over the customer's session.
 *
 * The MTA (Postfix lmtp, Sendmail [IPC]) connects to our per-domain unix sockets; the customer's
 * one SMTP server is behind fd in/out. We replay the customer's greeting and EHLO capabilities to
 * each MTA connection, forward MAIL/RCPT/DATA/RSET verbatim, answer EHLO/LHLO/NOOP/QUIT locally,
 * and repeat the customer's end-of-data reply once per accepted recipient for LMTP. We offer the
 * MTA PIPELINING ourselves (RFC 2920): its batched commands wait in its line buffer and go to the
 * customer one at a time, replies in order, so the customer never sees a pipelined command.
 * Each MTA transaction ends in one "msg" log line (sender, each recipient's fate, the size as the
 * customer stores it, the customer's final reply or why it was dropped), gathered in fixed
 * buffers as the commands pass; message content is never logged.
 *
 * Trusts: only root and the MTA's account (SO_PEERCRED) to connect; any other local user is
 * closed unanswered. Trusts the MTA for what it sends, but still checks line endings so a
 * malformed stream can never desynchronise the two sides, and refuses (4xx, never forwarded) a
 * recipient outside the domain the socket was bound for, so nothing but mail of a granted domain
 * reaches this customer. Trusts nothing from the customer beyond well-formed replies.
 * Invariants: at most one MTA connection owns the customer between MAIL and the end of its
 * transaction, and other connections are not read meanwhile; we never finish a message the MTA
 * did not finish (an MTA lost mid-DATA ends the customer session unfinished, so the customer
 * discards the partial message); a lost customer drops every MTA connection unanswered,
 * so the MTA keeps the mail queued.
 * The customer is behind the connection layer (conn.h: plain or TLS, one record per line for
 * fetchmail --ssl). Every wait has an absolute deadline: a customer reply must be complete within
 * timeout_s of its start (not per read: a customer trickling one octet at a time cannot stretch
 * it), and nothing waits past the cap on the whole reversed state (max_session_time); when the
 * cap hits, MTA connections are dropped unanswered (the MTA keeps the mail) and the customer gets
 * nothing further.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "linebuf.h"
#include "log.h"
#include "net.h"
#include "relay.h"

#define RELAY_MAX_LISTEN 64
#define RELAY_MAX_CONNS 8
#define RELAY_MAX_WATCH 4        /* relay_watch: descriptors that only end a wait */
#define RELAY_REPLY_MAX 8192     /* one (multi-line) SMTP reply */
#define RELAY_LINE_MAX 2048      /* MTA command line: RFC 5321 512 plus extension room */
#define RELAY_REFUSALS_LOGGED 10 /* refused peers / recipients logged one by one per session */
#define RELAY_LIST_MAX 400       /* one recipient list in a msg line: bounds the line (log.c: 2048) */
#define RELAY_REPLY_LOGGED 256   /* the customer's reply in a msg line, escaped */

/* What one MTA transaction did, for its one "msg" log line: fixed buffers, filled per command. */
struct relay_txn {
	char from[LOG_ESC_SIZE];      /* MAIL FROM path, escaped */
	char ok[RELAY_LIST_MAX];      /* accepted recipients, escaped, comma-separated */
	char no[RELAY_LIST_MAX];      /* refused ones, each with the code (":450-odmrd": ours) */
	size_t ok_len, no_len;
	unsigned n_ok, n_no;          /* all of them, listed or not */
	unsigned more_ok, more_no;    /* those that did not fit in the list */
	bool data;                    /* DATA answered 354: size= applies */
	bool ended;                   /* the final CRLF.CRLF went through */
	unsigned long long octets;    /* message octets relayed, as on the wire (dot-stuffed) */
	unsigned long long dots;      /* stuffing dots among them (the receiver removes them) */
	bool logged;                  /* its line is out */
};
/*
 * Message data goes to the customer in writes of up to this much (what the MTA has sent so far,
 * collected from reads of at most LB_SIZE): one write per 12 KiB read cost a poll, a read and a
 * write, and the customer a wake-up, per 12 KiB (bench/analysis.md, relay throughput).
 */
#define RELAY_DATA_FLUSH 65536
#define RELAY_DATA_HOLD_MS 1   /* a pause of the MTA mid-message after which what we hold goes out */

struct mconn {
	int fd;
	bool lmtp;
	const char *domain;   /* the domain its socket was bound for: the only one it may deliver */
	long pid;             /* the MTA process that connected (SO_PEERCRED); Postfix may pass a
	                         cached connection on to another lmtp process */
	bool txn;             /* MAIL accepted by the customer, transaction open */
	unsigned rcpts;       /* recipients the customer accepted in this transaction */
	struct relay_txn t;
	struct linebuf lb;
	char out[RELAY_REPLY_MAX];  /* replies to a pipelined batch, not yet sent */
	size_t olen;
};

struct relay {
	struct conn *cust;
	const char *name;
	unsigned timeout_s;
	long long cap;                        /* end of the reversed state (max_session_time) */
	bool expired;                         /* a wait ended at the cap */
	struct linebuf clb;                   /* customer replies */
	char greeting[RELAY_REPLY_MAX];       /* customer's 220, verbatim */
	size_t greeting_len;
	char ehlo[RELAY_REPLY_MAX];           /* our reply to the MTA's EHLO/LHLO */
	char helo[512];                       /* our reply to HELO */
	struct { int fd; bool lmtp; const char *domain; } lis[RELAY_MAX_LISTEN];
	unsigned nlis;
	uid_t peer_uid;                       /* besides root, the one account that may connect */
	char user[LOG_ESC_SIZE];              /* the customer's SASL name, escaped, for msg lines */
	const char *why;                      /* why the relay ends: reason= of open transactions */
	unsigned refusals;                    /* peers and recipients refused so far */
	struct mconn *conn[RELAY_MAX_CONNS];
	unsigned nconn;
	int watch[RELAY_MAX_WATCH];           /* relay_watch's descriptors */
	unsigned nwatch;
	struct mconn *owner;                  /* connection whose transaction holds the customer */
	long long last_activity;
	struct ho_stats st;
	char reply[RELAY_REPLY_MAX];          /* last customer reply, raw */
	size_t reply_len;
	int reply_code;
	char *dout;                           /* message data not yet written to the customer */
};

/* SECS from now, but never past the cap. */
static long long relay_deadline(const struct relay *r, unsigned secs)
{
	long long d = net_now_ms() + (long long)secs * 1000;
	return d < r->cap ? d : r->cap;
}

/* Whole seconds left for a wait of at most SECS (for net_write_all towards the MTA). */
static unsigned relay_secs(const struct relay *r, unsigned secs)
{
	long long left = (r->cap - net_now_ms() + 999) / 1000;
	return left <= 0 ? 0 : left < secs ? (unsigned)left : secs;
}

/* Note whether a failed wait ran into the cap; the status every caller then returns. */
static enum relay_rc relay_lost(struct relay *r)
{
	if (net_now_ms() >= r->cap)
		r->expired = true;
	r->why = r->expired ? "max_session_time" : "customer-lost";
	return r->expired ? RELAY_EXPIRED : RELAY_CUSTOMER_LOST;
}

/* Wait until the MTA's FD is readable, by DEADLINE: 1 ready, 0 timeout, -1 error. */
static int relay_wait_mta(int fd, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - net_now_ms();
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -1 : n > 0;
	}
}

/* Read what the customer has sent into the reply buffer, by DEADLINE; <=0: EOF, error, timeout. */
static ssize_t relay_fill_customer(struct relay *r, long long deadline)
{
	char buf[4096];
	size_t room = LB_SIZE - lb_pending(&r->clb);

	if (room == 0)
		return -1;
	ssize_t n = conn_read(r->cust, buf, room < sizeof buf ? room : sizeof buf, deadline);
	if (n > 0)
		lb_put(&r->clb, buf, (size_t)n);
	return n;
}

/*
 * Read one complete reply from the customer into r->reply (raw, CRLF kept) within SECS of now,
 * the whole reply, however it is split; checks that every line is "ddd-" or "ddd " with one code.
 * Returns the code, or -1 (lost, timeout, malformed).
 */
static int relay_read_reply(struct relay *r, unsigned secs)
{
	char *line;
	size_t len;
	int code = -1;
	long long deadline = relay_deadline(r, secs);

	r->reply_len = 0;
	for (;;) {
		enum lb_status s = lb_get(&r->clb, RELAY_LINE_MAX, &line, &len);
		if (s == LB_MORE) {
			if (relay_fill_customer(r, deadline) <= 0)
				return -1;
			continue;
		}
		if (s != LB_LINE || len < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]) ||
		    (len > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (c < 200 || c > 599 || (code >= 0 && c != code))
			return -1;
		code = c;
		if (r->reply_len + len + 2 > sizeof r->reply)
			return -1;
		memcpy(r->reply + r->reply_len, line, len);
		memcpy(r->reply + r->reply_len + len, "\r\n", 2);
		r->reply_len += len + 2;
		if (len == 3 || line[3] == ' ')
			break;
	}
	r->reply_code = code;
	return code;
}

/* Send one command line to the customer and read its reply code (-1: customer lost). */
static int relay_command(struct relay *r, const char *line, size_t len)
{
	char buf[RELAY_LINE_MAX + 2];

	memcpy(buf, line, len);
	memcpy(buf + len, "\r\n", 2);
	if (conn_write(r->cust, buf, len + 2, relay_deadline(r, r->timeout_s)) < 0)
		return -1;
	return relay_read_reply(r, r->timeout_s);
}

/* See relay.h. */
struct relay *relay_new(struct conn *cust, const char *name, unsigned timeout_s, long long cap)
{
	struct relay *r = calloc(1, sizeof *r);

	/* dout: room for a flush's worth plus one more read. */
	if (r == NULL || (r->dout = malloc(RELAY_DATA_FLUSH + LB_SIZE)) == NULL) {
		free(r);
		return NULL;
	}
	/*
	 * TCP_NODELAY is conn.c's (set from the start; in this strictly request/response state Nagle
	 * cost ~25 ms per message: 44 vs ~480 msg/s in bench/). fetchmail --ssl needs one TLS record
	 * per line from here on.
	 */
	r->cust = cust;
	conn_set_line_records(cust, true);
	r->name = name;
	r->timeout_s = timeout_s;
	r->cap = cap;
	lb_init(&r->clb);
	r->last_activity = net_now_ms();
	r->st.result = "done";
	strcpy(r->user, "-");
	return r;
}

/* Extensions the MTA may use through us: each must pass through a verbatim relay unchanged. */
static bool relay_ext_allowed(const char *kw, size_t n)
{
	static const char *const ok[] = { "SIZE", "8BITMIME", "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES" };

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strlen(ok[i]) == n && strncasecmp(ok[i], kw, n) == 0)
			return true;
	return false;
}

/* Turn the customer's EHLO reply into ours: same first line, allowed extensions, PIPELINING. */
static void relay_build_ehlo(struct relay *r, bool esmtp)
{
	const char *p = r->reply, *end = r->reply + r->reply_len;
	char first[512] = "";
	size_t o, nx = 0;
	const char *ext[65];
	size_t extlen[65];

	for (bool top = true; p < end; top = false) {
		const char *eol = strstr(p, "\r\n");
		const char *text = p + 4 <= eol ? p + 4 : eol;
		size_t n = (size_t)(eol - text);
		if (top)
			snprintf(first, sizeof first, "%.*s", (int)n, text);
		else if (esmtp && nx < 64 && relay_ext_allowed(text, strcspn(text, " \r"))) {
			ext[nx] = text;
			extlen[nx++] = n;
		}
		p = eol + 2;
	}
	if (first[0] == '\0')
		snprintf(first, sizeof first, "%s", r->name);
	/* Ours, not the customer's: one MTA round trip per batch (Sendmail via odmrd +19 % in bench/). */
	ext[nx] = "PIPELINING";
	extlen[nx++] = strlen("PIPELINING");
	snprintf(r->helo, sizeof r->helo, "250 %s\r\n", first);
	o = (size_t)snprintf(r->ehlo, sizeof r->ehlo, "250%c%s\r\n", nx ? '-' : ' ', first);
	for (size_t i = 0; i < nx && o < sizeof r->ehlo; i++)
		o += (size_t)snprintf(r->ehlo + o, sizeof r->ehlo - o, "250%c%.*s\r\n",
				      i + 1 < nx ? '-' : ' ', (int)extlen[i], ext[i]);
}

/* See relay.h. */
enum relay_rc relay_greet(struct relay *r, unsigned greet_s)
{
	char cmd[300];

	/* The customer greets as soon as it sees our 250; a silent one should not hold us for long. */
	int code = relay_read_reply(r, greet_s < r->timeout_s ? greet_s : r->timeout_s);

	if (code != 220) {
		log_msg(LOG_NOTICE, "reversed: customer greeting %d, giving up", code);
		return code < 0 ? relay_lost(r) : RELAY_CUSTOMER_LOST;
	}
	memcpy(r->greeting, r->reply, r->reply_len);
	r->greeting_len = r->reply_len;
	int n = snprintf(cmd, sizeof cmd, "EHLO %s", r->name);
	code = relay_command(r, cmd, (size_t)n);
	bool esmtp = code == 250;
	if (code >= 500) {
		n = snprintf(cmd, sizeof cmd, "HELO %s", r->name);
		code = relay_command(r, cmd, (size_t)n);
	}
	if (code != 250) {
		log_msg(LOG_NOTICE, "reversed: customer refused EHLO/HELO (%d)", code);
		return code < 0 ? relay_lost(r) : RELAY_CUSTOMER_LOST;
	}
	relay_build_ehlo(r, esmtp);
	return RELAY_OK;
}

/* See relay.h. */
int relay_listen(struct relay *r, int fd, bool lmtp, const char *domain)
{
	if (r->nlis == RELAY_MAX_LISTEN)
		return -1;
	r->lis[r->nlis].fd = fd;
	r->lis[r->nlis].lmtp = lmtp;
	r->lis[r->nlis].domain = domain;
	r->nlis++;
	return 0;
}

/* See relay.h. */
void relay_allow_peer(struct relay *r, uid_t uid)
{
	r->peer_uid = uid;
}

/* See relay.h. */
void relay_set_user(struct relay *r, const char *user)
{
	log_esc(user, strlen(user), r->user, sizeof r->user);
}

/* Log one refusal (the first RELAY_REFUSALS_LOGGED of a session; then once that we stop). */
static bool relay_log_refusal(struct relay *r)
{
	if (++r->refusals == RELAY_REFUSALS_LOGGED + 1)
		log_msg(LOG_WARNING, "reversed: more refusals in this session are not logged");
	return r->refusals <= RELAY_REFUSALS_LOGGED;
}

/*
 * The <path> of a MAIL or RCPT command LINE (LEN octets): its '<' in *P, its last '@' outside a
 * quoted local part in *AT (NULL if none); returns its length up to the first unquoted '>'
 * included, 0 if there is none.
 */
static size_t relay_path(const char *line, size_t len, const char **p, const char **at)
{
	const char *lt = memchr(line, '<', len), *end = line + len;
	bool quoted = false;

	*p = lt;
	*at = NULL;
	for (const char *q = lt ? lt + 1 : end; q < end; q++) {
		if (*q == '\\' && quoted && q + 1 < end)
			q++;
		else if (*q == '"')
			quoted = !quoted;
		else if (!quoted && *q == '@')
			*at = q;
		else if (!quoted && *q == '>')
			return (size_t)(q - lt + 1);
	}
	return 0;
}

/* True if the RCPT command LINE (LEN octets) names a recipient whose domain is DOMAIN. */
static bool relay_rcpt_in(const char *line, size_t len, const char *domain)
{
	const char *p, *at;
	size_t n = relay_path(line, len, &p, &at);

	if (n == 0 || at == NULL)
		return false;
	size_t dl = (size_t)(p + n - 1 - at - 1);
	return dl == strlen(domain) && strncasecmp(at + 1, domain, dl) == 0;
}

/* The path of command LINE escaped into BUF (the whole argument if it has no <path>). */
static const char *relay_path_esc(const char *line, size_t len, char *buf, size_t buflen)
{
	const char *p, *at;
	size_t n = relay_path(line, len, &p, &at), v = strcspn(line, ":");

	if (n == 0) {
		p = v < len ? line + v + 1 : line + len;
		n = (size_t)(line + len - p);
	}
	return log_esc(p, n, buf, buflen);
}

/* Start C's transaction record at MAIL (LINE, LEN octets): sender escaped, lists empty. */
static void relay_txn_begin(struct mconn *c, const char *line, size_t len)
{
	memset(&c->t, 0, sizeof c->t);
	relay_path_esc(line, len, c->t.from, sizeof c->t.from);
}

/*
 * Note one recipient of C's transaction (RCPT LINE, LEN octets) in the accepted list (CODE 0)
 * or the refused one, with its code (LOCAL: we refused it). Lists stop at RELAY_LIST_MAX with
 * room for "+N-more".
 */
static void relay_txn_rcpt(struct mconn *c, const char *line, size_t len, int code, bool local)
{
	struct relay_txn *t = &c->t;
	char esc[LOG_ESC_SIZE], item[LOG_ESC_SIZE + 16];
	bool ok = code == 0;
	char *list = ok ? t->ok : t->no;
	size_t *used = ok ? &t->ok_len : &t->no_len;
	unsigned *more = ok ? &t->more_ok : &t->more_no;

	*(ok ? &t->n_ok : &t->n_no) += 1;
	relay_path_esc(line, len, esc, sizeof esc);
	int n = ok ? snprintf(item, sizeof item, "%s%s", *used ? "," : "", esc) :
		     snprintf(item, sizeof item, "%s%s:%d%s", *used ? "," : "", esc, code, local ? "-odmrd" : "");
	if (*more || n < 0 || *used + (size_t)n + 16 > RELAY_LIST_MAX) {
		(*more)++;
		return;
	}
	memcpy(list + *used, item, (size_t)n + 1);
	*used += (size_t)n;
}

/* The customer's last reply as one line (continuation lines' codes dropped), escaped into BUF. */
static const char *relay_reply_text(const struct relay *r, char *buf, size_t buflen)
{
	char one[1024];
	size_t o = 0;

	for (const char *p = r->reply, *end = r->reply + r->reply_len; p < end && o < sizeof one;) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		size_t skip = p == r->reply ? 0 : 4, n;
		if (eol == NULL)
			break;
		n = (size_t)(eol - p) > skip ? (size_t)(eol - p) - skip : 0;
		if (o > 0 && o < sizeof one)
			one[o++] = ' ';
		n = n < sizeof one - o ? n : sizeof one - o;
		memcpy(one + o, p + skip, n);
		if (skip == 0 && n > 3)
			one[o + 3] = ' ';   /* "250-first line" reads "250 first line" */
		o += n;
		p = eol + 2;
	}
	return log_esc_text(one, o, buf, buflen);
}

/* A recipient list for the log: "-" when empty, ",+N-more" when some did not fit. */
static const char *relay_list(const char *list, size_t len, unsigned more, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%s", len ? list : "-");
	if (more)
		snprintf(buf + len, buflen - len, ",+%u-more", more);
	return buf;
}

/*
 * The one log line of C's transaction (once): who, what, how big, where each recipient went,
 * RESULT (and REASON, may be NULL), and with REPLY the customer's last reply, quoted.
 */
static void relay_txn_log(struct relay *r, struct mconn *c, const char *result, const char *reason, bool reply)
{
	struct relay_txn *t = &c->t;
	char size[24] = "-", text[RELAY_REPLY_LOGGED + 2] = "-", ok[RELAY_LIST_MAX], no[RELAY_LIST_MAX];

	if (t->logged)
		return;
	t->logged = true;
	if (t->data)
		snprintf(size, sizeof size, "%llu", t->octets - t->dots - (t->ended ? 3 : 0));
	if (reply) {
		text[0] = '"';
		relay_reply_text(r, text + 1, RELAY_REPLY_LOGGED);
		strcat(text, "\"");
	}
	log_msg(LOG_INFO, "msg user=%s domain=%s mta_pid=%ld from=%s size=%s rcpts=%u accepted=%s refused=%s "
		"result=%s%s%s reply=%s", r->user, c->domain, c->pid, t->from, size, t->n_ok + t->n_no,
		relay_list(t->ok, t->ok_len, t->more_ok, ok, sizeof ok),
		relay_list(t->no, t->no_len, t->more_no, no, sizeof no), result, reason ? " reason=" : "",
		reason ? reason : "", text);
}

/* True if C may talk now: no other connection's transaction holds the customer. */
static bool relay_may_talk(const struct relay *r, const struct mconn *c)
{
	return r->owner == NULL || r->owner == c;
}

/* True if C has a whole command line buffered. */
static bool relay_has_line(const struct mconn *c)
{
	return memchr(lb_peek(&c->lb), '\n', lb_pending(&c->lb)) != NULL;
}

/* Send the replies collected for C. */
static int relay_mta_flush(struct relay *r, struct mconn *c)
{
	size_t n = c->olen;

	c->olen = 0;
	return n == 0 ? 0 : net_write_all(c->fd, c->out, n, relay_secs(r, r->timeout_s));
}

/*
 * Reply to C. While its pipelined batch has more commands buffered the reply waits, and the
 * batch's replies leave in one write (RFC 2920 3.2): the MTA wakes once per batch, not per
 * reply. -1 if a write failed.
 */
static int relay_mta_send(struct relay *r, struct mconn *c, const char *buf, size_t len)
{
	if (c->olen + len > sizeof c->out && relay_mta_flush(r, c) < 0)
		return -1;
	if (len > sizeof c->out)
		return net_write_all(c->fd, buf, len, relay_secs(r, r->timeout_s));
	memcpy(c->out + c->olen, buf, len);
	c->olen += len;
	return relay_has_line(c) ? 0 : relay_mta_flush(r, c);
}

/* Send a locally made reply to an MTA connection. */
static int relay_to_mta(struct relay *r, struct mconn *c, const char *text)
{
	return relay_mta_send(r, c, text, strlen(text));
}

/* Relay the customer's last reply to an MTA connection. */
static int relay_reply_to_mta(struct relay *r, struct mconn *c)
{
	return relay_mta_send(r, c, r->reply, r->reply_len);
}

/* Forget connection I (closing it without a word, so the MTA defers whatever was unfinished). */
static void relay_drop(struct relay *r, unsigned i)
{
	struct mconn *c = r->conn[i];

	if (c->txn)
		relay_txn_log(r, c, "dropped", r->why ? r->why : "mta-lost", false);
	if (r->owner == c)
		r->owner = NULL;
	close(c->fd);
	free(c);
	r->conn[i] = r->conn[--r->nconn];
	r->last_activity = net_now_ms();
}

/* End C's open transaction at the customer (MTA quit or vanished: WHY): RSET, reply discarded. */
static enum relay_rc relay_end_txn(struct relay *r, struct mconn *c, const char *why)
{
	if (!c->txn)
		return RELAY_OK;
	relay_txn_log(r, c, "dropped", why, false);
	c->txn = false;
	r->owner = NULL;
	return relay_command(r, "RSET", 4) < 0 ? relay_lost(r) : RELAY_OK;
}

/* Where the scan of message data stands: line start, inside a line, after CR, after a leading dot. */
enum relay_dstate { D_BOL, D_TEXT, D_CR, D_DOT, D_DOTCR };

/*
 * Scan N octets of message data at P from state *ST. Returns how many belong to the message: all
 * N, or up to and including the LF of CRLF.CRLF (*end), or the octets before a bare CR or LF
 * (*bad). Counts the stuffing dots (a line's leading dot not followed by CR) in *DOTS. memchr
 * finds each line's CR and checks it has no LF before it: a few instructions per line instead of
 * a dozen per octet.
 */
static size_t relay_scan(const char *p, size_t n, enum relay_dstate *st, bool *end, bool *bad,
			 unsigned long long *dots)
{
	size_t i = 0;

	while (i < n) {
		if (*st == D_CR || *st == D_DOTCR) {
			if (p[i] != '\n') {
				*bad = true;
				return i;
			}
			i++;
			if (*st == D_DOTCR) {
				*end = true;
				return i;
			}
			*st = D_BOL;
			continue;
		}
		if (*st == D_BOL && p[i] == '.') {
			*st = D_DOT;
			i++;
			continue;
		}
		const char *cr = memchr(p + i, '\r', n - i);
		size_t stop = cr != NULL ? (size_t)(cr - p) : n;
		if (memchr(p + i, '\n', stop - i) != NULL) {
			*bad = true;
			return i;
		}
		if (*st == D_DOT && stop > i)
			(*dots)++;
		if (cr == NULL) {
			*st = D_TEXT;
			return n;
		}
		*st = *st == D_DOT && stop == i ? D_DOTCR : D_CR;
		i = stop + 1;
	}
	return n;
}

/* Write the message data collected in r->dout (*OLEN octets) to the customer. */
static int relay_data_flush(struct relay *r, size_t *olen)
{
	if (*olen == 0)
		return 0;
	int rc = conn_write(r->cust, r->dout, *olen, relay_deadline(r, r->timeout_s));
	*olen = 0;
	return rc;
}

/*
 * Copy the message from the MTA to the customer up to and including the final CRLF.CRLF.
 * Only CRLF line endings are accepted: anything else could end the message at one side and not
 * the other. What the MTA sends is collected and written in writes of up to RELAY_DATA_FLUSH:
 * the end of data at once, the rest when the buffer is full or the MTA has paused for
 * RELAY_DATA_HOLD_MS (an MTA writing 4 KiB at a time otherwise made every 4 KiB a write, a TCP
 * segment and a wake-up of the customer). Reads are at most LB_SIZE, so what the MTA sent after
 * the end of data fits back into its (then empty) line buffer. Returns RELAY_OK at the end.
 */
static enum relay_rc relay_data(struct relay *r, struct mconn *c)
{
	enum relay_dstate st = D_BOL;
	bool end = false, bad = false;
	size_t olen = 0;

	for (;;) {
		size_t got = 0;
		ssize_t n = 0;
		bool from_lb = lb_pending(&c->lb) > 0, lost = false;
		if (from_lb) {
			/* Data that came with (or in the same read as) the DATA command. */
			got = relay_scan(lb_peek(&c->lb), lb_pending(&c->lb), &st, &end, &bad, &c->t.dots);
			if (!bad)
				memcpy(r->dout + olen, lb_peek(&c->lb), got);
			lb_consume(&c->lb, got);
		} else {
			do
				n = read(c->fd, r->dout + olen, LB_SIZE);
			while (n < 0 && errno == EINTR);
			lost = n == 0 || (n < 0 && errno != EAGAIN);
			if (n > 0)
				got = relay_scan(r->dout + olen, (size_t)n, &st, &end, &bad, &c->t.dots);
			if (n > 0 && !bad)
				lb_put(&c->lb, r->dout + olen + got, (size_t)n - got);
		}
		if (bad) {
			log_msg(LOG_ERR, "reversed: MTA sent a bare CR or LF in DATA; abandoning the message");
			r->why = "bad-line-ending";
			return RELAY_ABORT;
		}
		olen += got;
		c->t.octets += got;
		if ((end || olen >= RELAY_DATA_FLUSH) && relay_data_flush(r, &olen) < 0)
			return relay_lost(r);
		if (end) {
			c->t.ended = true;
			return RELAY_OK;
		}
		if (n > 0)
			r->last_activity = net_now_ms();
		/* A full read or the line buffer: more may be waiting. A short one: the socket is empty. */
		if (from_lb || n == LB_SIZE)
			continue;
		if (!lost) {
			long long hold = net_now_ms() + RELAY_DATA_HOLD_MS;
			if (olen > 0 && relay_wait_mta(c->fd, hold < r->cap ? hold : r->cap) > 0)
				continue;
			if (relay_data_flush(r, &olen) < 0)
				return relay_lost(r);
			if (relay_wait_mta(c->fd, relay_deadline(r, r->timeout_s)) > 0)
				continue;
		}
		/* EOF, an error, or nothing by the deadline. */
		if (net_now_ms() >= r->cap) {
			log_msg(LOG_NOTICE, "reversed: max_session_time reached in DATA; abandoning the session");
			return relay_lost(r);
		}
		log_msg(LOG_NOTICE, "reversed: MTA connection lost in DATA; abandoning the session");
		r->why = "mta-lost-in-data";
		return RELAY_ABORT;
	}
}

/* DATA: forward, carry the message, then hand back the customer's verdict (per recipient for LMTP). */
static enum relay_rc relay_do_data(struct relay *r, struct mconn *c, const char *line, size_t len)
{
	int code = relay_command(r, line, len);

	if (code < 0)
		return relay_lost(r);
	if (code != 354) {
		relay_txn_log(r, c, "data-refused", NULL, true);
		relay_reply_to_mta(r, c);
		return RELAY_OK;
	}
	c->t.data = true;
	/* The MTA sends nothing before it has the 354, whatever else it has buffered. */
	if (relay_reply_to_mta(r, c) < 0 || relay_mta_flush(r, c) < 0) {
		log_msg(LOG_NOTICE, "reversed: MTA connection lost before DATA; abandoning the session");
		r->why = "mta-lost-before-data";
		return RELAY_ABORT;
	}
	enum relay_rc rc = relay_data(r, c);
	if (rc != RELAY_OK)
		return rc;
	code = relay_read_reply(r, r->timeout_s);
	if (code < 0)
		return relay_lost(r);
	relay_txn_log(r, c, code / 100 == 2 ? "sent" : code / 100 == 4 ? "deferred" : "bounced", NULL, true);
	unsigned copies = c->lmtp ? c->rcpts : 1;
	int sent = 0;
	for (unsigned i = 0; i < copies && sent == 0; i++)
		sent = relay_reply_to_mta(r, c);
	/* Sent now, whatever is buffered behind: a lost verdict must be known (and logged) here. */
	if ((sent < 0 || relay_mta_flush(r, c) < 0) && code / 100 == 2)
		log_msg(LOG_WARNING, "reversed: the MTA connection was gone before it heard "
			"the customer accept a message; the MTA will send it again");
	if (code / 100 == 2)
		r->st.messages++;
	c->txn = false;
	c->rcpts = 0;
	r->owner = NULL;
	return RELAY_OK;
}

/* One command from an MTA connection. Returns RELAY_OK, or a session-ending status. *gone: drop C. */
static enum relay_rc relay_mta_command(struct relay *r, struct mconn *c, char *line, size_t len,
				       bool *gone)
{
	char verb[8];
	size_t n = strcspn(line, " ");

	for (size_t i = 0; i < sizeof verb; i++)
		verb[i] = i < n && i < sizeof verb - 1 ? (char)toupper((unsigned char)line[i]) : '\0';
	if (n >= sizeof verb)
		verb[0] = '\0';
	if (!strcmp(verb, "QUIT")) {
		enum relay_rc rc = relay_end_txn(r, c, "mta-quit");
		if (relay_to_mta(r, c, "221 2.0.0 Bye\r\n") == 0)
			relay_mta_flush(r, c);
		*gone = true;
		return rc;
	}
	if (!strcmp(verb, "EHLO") || !strcmp(verb, "LHLO") || !strcmp(verb, "HELO")) {
		enum relay_rc rc = relay_end_txn(r, c, "mta-hello");
		if (relay_to_mta(r, c, verb[0] == 'H' ? r->helo : r->ehlo) < 0)
			*gone = true;
		return rc;
	}
	if (!strcmp(verb, "NOOP") || (!strcmp(verb, "RSET") && !c->txn)) {
		if (relay_to_mta(r, c, "250 2.0.0 OK\r\n") < 0)
			*gone = true;
		return RELAY_OK;
	}
	if (!strcmp(verb, "MAIL") && c->txn) {
		relay_to_mta(r, c, "503 5.5.1 Nested MAIL command\r\n");
		return RELAY_OK;
	}
	if (!relay_may_talk(r, c)) {
		/* Cannot happen by construction; if it did, a temporary answer keeps the mail queued. */
		relay_to_mta(r, c, "451 4.3.0 Customer busy with another transaction\r\n");
		return RELAY_OK;
	}
	bool needs_txn = !strcmp(verb, "RCPT") || !strcmp(verb, "DATA") || !strcmp(verb, "RSET");
	if (needs_txn && !c->txn) {
		relay_to_mta(r, c, "503 5.5.1 Need MAIL first\r\n");
		return RELAY_OK;
	}
	if (!strcmp(verb, "RCPT") && !relay_rcpt_in(line, len, c->domain)) {
		/* Another domain's mail on this socket (routing mistake, or not the MTA): it stays queued. */
		char esc[LOG_ESC_SIZE];
		if (relay_log_refusal(r))
			log_msg(LOG_WARNING, "reversed: refused %s on the socket for %s: not that domain",
				log_esc(line, len, esc, sizeof esc), c->domain);
		relay_to_mta(r, c, "450 4.7.1 Recipient not in the domain this connection serves\r\n");
		relay_txn_rcpt(c, line, len, 450, true);
		return RELAY_OK;
	}
	if (!strcmp(verb, "DATA"))
		return relay_do_data(r, c, line, len);
	if (strcmp(verb, "MAIL") && !needs_txn) {
		relay_to_mta(r, c, "502 5.5.1 Command not implemented\r\n");
		return RELAY_OK;
	}
	if (!strcmp(verb, "MAIL"))
		relay_txn_begin(c, line, len);
	else if (!strcmp(verb, "RSET"))
		relay_txn_log(r, c, "dropped", "mta-rset", false);
	int code = relay_command(r, line, len);
	if (code < 0)
		return relay_lost(r);
	if (!strcmp(verb, "MAIL") && code / 100 == 2) {
		c->txn = true;
		c->rcpts = 0;
		r->owner = c;
	} else if (!strcmp(verb, "MAIL")) {
		relay_txn_log(r, c, "mail-refused", NULL, true);
	} else if (!strcmp(verb, "RCPT")) {
		relay_txn_rcpt(c, line, len, code / 100 == 2 ? 0 : code, false);
		if (code / 100 == 2) {
			c->rcpts++;
			r->st.rcpts_ok++;
		} else {
			r->st.rcpts_failed++;
		}
	} else if (!strcmp(verb, "RSET")) {
		c->txn = false;
		r->owner = NULL;
	}
	if (relay_reply_to_mta(r, c) < 0)
		*gone = true;
	return RELAY_OK;
}

/*
 * Handle MTA connection I: read once if FILL, then run its buffered commands for as long as no
 * other connection's transaction holds the customer (the rest waits in its buffer).
 */
static enum relay_rc relay_mta_input(struct relay *r, unsigned i, bool fill)
{
	struct mconn *c = r->conn[i];
	char *line;
	size_t len;
	bool gone = false;
	enum relay_rc rc = RELAY_OK;

	r->last_activity = net_now_ms();
	if (fill) {
		ssize_t got = lb_fill(&c->lb, c->fd);
		if (got == -1 && errno == EAGAIN)
			return RELAY_OK;
		if (got <= 0 && got != -2) {
			rc = relay_end_txn(r, c, "mta-closed");
			relay_drop(r, i);
			return rc;
		}
	}
	while (!gone && rc == RELAY_OK && relay_may_talk(r, c)) {
		enum lb_status s = lb_get(&c->lb, RELAY_LINE_MAX, &line, &len);
		if (s == LB_MORE)
			break;
		if (s != LB_LINE) {
			log_msg(LOG_ERR, "reversed: malformed command line from the MTA; dropping it");
			/* At once: what follows the bad line may still look like a buffered command. */
			if (relay_to_mta(r, c, "500 5.5.2 Malformed line\r\n") == 0)
				relay_mta_flush(r, c);
			rc = relay_end_txn(r, c, "mta-malformed-line");
			gone = true;
			break;
		}
		rc = relay_mta_command(r, c, line, len, &gone);
	}
	if (gone) {
		/* A reply that could not reach the MTA may have left the customer mid-transaction. */
		if (rc == RELAY_OK)
			rc = relay_end_txn(r, c, "mta-lost");
		relay_drop(r, i);
	}
	return rc;
}

/*
 * Accept one MTA connection on listener L and greet it with the customer's own greeting; anyone
 * but root and the MTA's account is closed without a word.
 */
static void relay_accept(struct relay *r, unsigned l)
{
	int fd = accept4(r->lis[l].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ucred cr = { .pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t cl = sizeof cr;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || (cr.uid != 0 && cr.uid != r->peer_uid)) {
		if (relay_log_refusal(r))
			log_msg(LOG_WARNING, "reversed: refused a connection to the socket for %s from uid %ld "
				"pid %ld: only root and mta_user (uid %ld) may deliver", r->lis[l].domain,
				(long)cr.uid, (long)cr.pid, (long)r->peer_uid);
		close(fd);
		return;
	}
	struct mconn *c = calloc(1, sizeof *c);
	if (c == NULL || net_write_all(fd, r->greeting, r->greeting_len, relay_secs(r, r->timeout_s)) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->pid = (long)cr.pid;
	c->lmtp = r->lis[l].lmtp;
	c->domain = r->lis[l].domain;
	lb_init(&c->lb);
	r->conn[r->nconn++] = c;
	r->st.mta_conns++;
	r->last_activity = net_now_ms();
}

/*
 * The customer speaks only when spoken to: input now is EOF, a 421, or a protocol error. Under
 * TLS a readable socket may hold only a record that is not data (read and ignored here).
 */
static bool relay_customer_spoke(struct relay *r)
{
	char b[1];
	ssize_t n = conn_read(r->cust, b, 1, 0);

	return !(n < 0 && errno == EAGAIN);
}

/* See relay.h. */
enum relay_rc relay_step(struct relay *r, int timeout_ms)
{
	struct pollfd p[1 + RELAY_MAX_LISTEN + RELAY_MAX_CONNS + RELAY_MAX_WATCH];
	struct mconn *who[RELAY_MAX_CONNS];
	unsigned np = 0, nl = 0, nc = 0;
	long long left = r->cap - net_now_ms();

	if (left <= 0) {
		r->expired = true;
		r->why = "max_session_time";
		return RELAY_EXPIRED;
	}
	if (timeout_ms > left)
		timeout_ms = (int)left;
	/* Commands that waited in a buffer while another connection's transaction ran. */
	unsigned ready = r->nconn;
	for (unsigned i = 0; i < r->nconn && ready == r->nconn; i++)
		if (relay_may_talk(r, r->conn[i]) && relay_has_line(r->conn[i]))
			ready = i;
	/* The poll below sees a plain customer's input; not TLS records, nor anything when it is skipped. */
	if ((ready < r->nconn || conn_tls(r->cust) != NULL) && conn_pending(r->cust) &&
	    relay_customer_spoke(r)) {
		log_msg(LOG_NOTICE, "reversed: customer closed or spoke out of turn");
		r->why = "customer-lost";
		return RELAY_CUSTOMER_LOST;
	}
	if (ready < r->nconn)
		return relay_mta_input(r, ready, false);
	p[np++] = (struct pollfd){ .fd = conn_fd(r->cust), .events = POLLIN };
	if (r->nconn < RELAY_MAX_CONNS && r->owner == NULL)
		for (unsigned i = 0; i < r->nlis; i++, nl++)
			p[np++] = (struct pollfd){ .fd = r->lis[i].fd, .events = POLLIN };
	for (unsigned i = 0; i < r->nconn; i++)
		if (r->owner == NULL || r->owner == r->conn[i]) {
			who[nc++] = r->conn[i];
			p[np++] = (struct pollfd){ .fd = r->conn[i]->fd, .events = POLLIN };
		}
	/* Last, so the indexes above stay as they are; their only effect is to end the wait. */
	for (unsigned i = 0; i < r->nwatch; i++)
		p[np + i] = (struct pollfd){ .fd = r->watch[i], .events = POLLIN };
	int n = poll(p, np + r->nwatch, timeout_ms);
	if (n < 0)
		return errno == EINTR ? RELAY_OK : RELAY_CUSTOMER_LOST;
	if (n == 0)
		return RELAY_OK;
	if (p[0].revents && relay_customer_spoke(r)) {
		log_msg(LOG_NOTICE, "reversed: customer closed or spoke out of turn");
		r->why = "customer-lost";
		return RELAY_CUSTOMER_LOST;
	}
	for (unsigned i = 0; i < nl; i++)
		if (p[1 + i].revents)
			relay_accept(r, i);
	for (unsigned k = 0; k < nc; k++) {
		/* An earlier connection in this round may have opened a transaction: the rest wait. */
		if (!p[1 + nl + k].revents || !relay_may_talk(r, who[k]))
			continue;
		for (unsigned i = 0; i < r->nconn; i++)
			if (r->conn[i] == who[k]) {
				enum relay_rc rc = relay_mta_input(r, i, true);
				if (rc != RELAY_OK)
					return rc;
				break;
			}
	}
	return RELAY_OK;
}

/* See relay.h. */
void relay_watch(struct relay *r, const int *fd, unsigned n)
{
	r->nwatch = 0;
	for (unsigned i = 0; i < n && r->nwatch < RELAY_MAX_WATCH; i++)
		r->watch[r->nwatch++] = fd[i];
}

/* See relay.h. */
unsigned relay_conns(const struct relay *r)
{
	return r->nconn;
}

/* See relay.h. */
bool relay_quiet(const struct relay *r)
{
	if (r->owner != NULL)
		return false;
	for (unsigned i = 0; i < r->nconn; i++)
		if (r->conn[i]->txn || lb_pending(&r->conn[i]->lb) > 0)
			return false;
	return true;
}

/* See relay.h. */
long long relay_idle_ms(const struct relay *r)
{
	return net_now_ms() - r->last_activity;
}

/* See relay.h. */
void relay_stop_listening(struct relay *r)
{
	for (unsigned i = 0; i < r->nlis; i++)
		close(r->lis[i].fd);
	r->nlis = 0;
}

/* See relay.h. */
void relay_quit(struct relay *r)
{
	unsigned saved = r->timeout_s;

	r->timeout_s = 30;
	relay_command(r, "QUIT", 4);
	r->timeout_s = saved;
}

/* See relay.h. */
bool relay_expired(const struct relay *r)
{
	return r->expired;
}

/* See relay.h. */
void relay_stats(const struct relay *r, struct ho_stats *st)
{
	*st = r->st;
}

/* See relay.h. */
void relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	while (r->nconn > 0)
		relay_drop(r, 0);
	relay_stop_listening(r);
	free(r->dout);
	free(r);
}
