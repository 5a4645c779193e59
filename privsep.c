/*
 * privsep.c - the request protocol between a session and the commands it may run (OpenNTPD's
 * imsg split is the model): the session says what it wants done (list the queue, flush a domain,
 * release queue IDs), never how; ps_argv() alone turns that into an argv, from the configuration.
 *
 * Trusts: the configuration. Trusts nothing in a request: it may come from a compromised
 * session over the helper's socket. Invariants: the program is always the configured MTA's
 * (postqueue or sendmail, with the configured -c / -C), the options are fixed per kind, and the
 * only request text in an argv is a queue ID (letters and digits, bounded) or a domain that
 * passed dom_valid(); an ID never starts with '-', so it cannot become an option.
 *
 * Wire format (one SOCK_SEQPACKET message): 'Q', mta, kind, n, then n NUL-terminated items.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "domains.h"
#include "privsep.h"

#define PS_MAGIC 'Q'

/* True if S is a queue ID as both MTAs write them: 1..PS_ID_MAX letters and digits. */
static bool ps_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

/* See privsep.h. */
size_t ps_encode(const struct ps_req *req, char *buf, size_t len)
{
	size_t o = 4;

	if (req->n > PS_ITEMS_MAX || len < 4)
		return 0;
	buf[0] = PS_MAGIC;
	buf[1] = (char)req->mta;
	buf[2] = (char)req->kind;
	buf[3] = (char)req->n;
	for (unsigned i = 0; i < req->n; i++) {
		size_t k = strlen(req->item[i]) + 1;
		if (k > DOM_NAME_MAX + 1 || o + k > len)
			return 0;
		memcpy(buf + o, req->item[i], k);
		o += k;
	}
	return o;
}

/* See privsep.h. BUF must stay alive while REQ is used: the items point into it. */
int ps_decode(const char *buf, size_t len, struct ps_req *req, char *why, size_t whylen)
{
	size_t o = 4;

	if (len < 4 || buf[0] != PS_MAGIC) {
		snprintf(why, whylen, "not a request");
		return -1;
	}
	req->mta = (enum cf_mta)(unsigned char)buf[1];
	req->kind = (enum ps_kind)(unsigned char)buf[2];
	req->n = (unsigned char)buf[3];
	if (req->n > PS_ITEMS_MAX) {
		snprintf(why, whylen, "%u items (at most %d)", req->n, PS_ITEMS_MAX);
		return -1;
	}
	for (unsigned i = 0; i < req->n; i++) {
		const char *end = o < len ? memchr(buf + o, '\0', len - o) : NULL;
		if (end == NULL) {
			snprintf(why, whylen, "item %u unterminated", i + 1);
			return -1;
		}
		req->item[i] = buf + o;
		o = (size_t)(end - buf) + 1;
	}
	if (o != len) {
		snprintf(why, whylen, "%zu octets after the last item", len - o);
		return -1;
	}
	return 0;
}

/* Append one argument (S must outlive OUT). */
static void ps_add(struct ps_argv *out, const char *s)
{
	out->v[out->n++] = (char *)s;
	out->v[out->n] = NULL;
}

/* Append PREFIX followed by S, copied into OUT's own storage. */
static void ps_add_joined(struct ps_argv *out, const char *prefix, const char *s)
{
	char *d = out->store + out->used;
	int k = snprintf(d, sizeof out->store - out->used, "%s%s", prefix, s);

	out->used += (size_t)k + 1;
	ps_add(out, d);
}

/* Refuse with a reason. */
static int ps_refuse(char *why, size_t whylen, const char *what, const char *kind)
{
	snprintf(why, whylen, "%s %s", what, kind);
	return -1;
}

/* postqueue [-c DIR] -j | -s DOMAIN | -i ID */
static int ps_postfix(const struct config *cf, const struct ps_req *req, struct ps_argv *out,
		      char *why, size_t whylen)
{
	ps_add(out, cf->postqueue);
	if (cf->postfix_config_dir) {
		ps_add(out, "-c");
		ps_add(out, cf->postfix_config_dir);
	}
	switch (req->kind) {
	case PS_LIST:
		if (req->n != 0)
			return ps_refuse(why, whylen, "postfix list", "takes no items");
		ps_add(out, "-j");
		return 0;
	case PS_FLUSH:
		if (req->n != 1 || !dom_valid(req->item[0], strlen(req->item[0])))
			return ps_refuse(why, whylen, "postfix flush", "needs one valid domain");
		ps_add(out, "-s");
		ps_add(out, req->item[0]);
		return 0;
	case PS_RELEASE:
		/* postqueue takes one -i per run (3.7: a second one is a usage error). */
		if (req->n != 1 || !ps_id_ok(req->item[0]))
			return ps_refuse(why, whylen, "postfix release", "needs one queue ID");
		ps_add(out, "-i");
		ps_add(out, req->item[0]);
		return 0;
	}
	return ps_refuse(why, whylen, "postfix", "request of an unknown kind");
}

/* sendmail [-C FILE] -bp -v | -qf -qIID... */
static int ps_sendmail(const struct config *cf, const struct ps_req *req, struct ps_argv *out,
		       char *why, size_t whylen)
{
	ps_add(out, cf->sendmail);
	if (cf->sendmail_cf) {
		ps_add(out, "-C");
		ps_add(out, cf->sendmail_cf);
	}
	switch (req->kind) {
	case PS_LIST:
		if (req->n != 0)
			return ps_refuse(why, whylen, "sendmail list", "takes no items");
		/* -v: recipients in full (otherwise cut at 38 characters). */
		ps_add(out, "-bp");
		ps_add(out, "-v");
		return 0;
	case PS_RELEASE:
		if (req->n == 0)
			return ps_refuse(why, whylen, "sendmail release", "needs queue IDs");
		/* One foreground run; several -qI are ORed (verified with 8.17). */
		ps_add(out, "-qf");
		for (unsigned i = 0; i < req->n; i++) {
			if (!ps_id_ok(req->item[i]))
				return ps_refuse(why, whylen, "sendmail release", "with a malformed queue ID");
			ps_add_joined(out, "-qI", req->item[i]);
		}
		return 0;
	case PS_FLUSH:
		return ps_refuse(why, whylen, "sendmail", "has no flush by domain here");
	}
	return ps_refuse(why, whylen, "sendmail", "request of an unknown kind");
}

/* See privsep.h. */
int ps_argv(const struct config *cf, const struct ps_req *req, struct ps_argv *out, char *why,
	    size_t whylen)
{
	out->n = 0;
	out->used = 0;
	out->v[0] = NULL;
	if (req->mta != cf->mta)
		return ps_refuse(why, whylen, "request for another MTA than", "the configured one");
	if (req->n > PS_ITEMS_MAX)
		return ps_refuse(why, whylen, "request", "with too many items");
	if (cf->mta == CF_MTA_POSTFIX && cf->postqueue)
		return ps_postfix(cf, req, out, why, whylen);
	if (cf->mta == CF_MTA_SENDMAIL && cf->sendmail)
		return ps_sendmail(cf, req, out, why, whylen);
	return ps_refuse(why, whylen, "no MTA command", "for this configuration");
}
