/*
 * domains.c - which domains a customer may ask for.
 *
 * Trusts nothing: ATRN arguments come from the network and map values from a file an admin may be
 * replacing right now. Invariants: every name in a dom_list passed dom_valid() and is lower case;
 * the map is opened read-only per lookup, so replacing it by rename(2) is always safe.
 * libgdbm itself is opened at the first look-up (dynlib.c): a session that never reaches ATRN
 * does not load it.
 */
#include <ctype.h>
#include <errno.h>
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "dynlib.h"

/* The GDBM functions the map look-up uses, bound by dom_gdbm(). */
static struct {
	void *handle;
	__typeof__(gdbm_open) *open;
	__typeof__(gdbm_fetch) *fetch;
	__typeof__(gdbm_close) *close;
	__typeof__(gdbm_errno_location) *errno_location;
	__typeof__(gdbm_strerror) *strerror;
	__typeof__(gdbm_check_syserr) *check_syserr;
} gd;
#define GD_ERRNO (*gd.errno_location())

/* RFC 2645: sub-domain = let-dig [*(let-dig / "-") let-dig]; domain = 2 or more, dot-separated. */
bool dom_valid(const char *s, size_t len)
{
	size_t labels = 0, lablen = 0;

	if (len == 0 || len > DOM_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (lablen == 0 || s[i - 1] == '-')
				return false;
			labels++;
			lablen = 0;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || !(isalnum(c) || c == '-'))
			return false;
		if (lablen == 0 && c == '-')
			return false;
		if (++lablen > DOM_LABEL_MAX)
			return false;
	}
	return labels >= 2;
}

/* True if NAME is in L. */
bool dom_contains(const struct dom_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

/* Add a lowered copy of S unless already present; refuse to grow past MAX names. */
static enum dom_rc dom_add(struct dom_list *l, const char *s, size_t len, size_t max)
{
	char name[DOM_NAME_MAX + 1];

	for (size_t i = 0; i < len; i++)
		name[i] = (char)tolower((unsigned char)s[i]);
	name[len] = '\0';
	if (dom_contains(l, name))
		return DOM_OK;
	if (l->n >= max)
		return DOM_TOO_MANY;
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (v == NULL)
		return DOM_TEMP;
	l->v = v;
	if ((v[l->n] = strdup(name)) == NULL)
		return DOM_TEMP;
	l->n++;
	return DOM_OK;
}

/* Parse "d1,d2, d3": exactly one comma between names, spaces only after a comma. */
enum dom_rc dom_parse_atrn(const char *arg, size_t max, struct dom_list *out)
{
	const char *p = arg;
	enum dom_rc rc;

	out->v = NULL;
	out->n = 0;
	if (*p == '\0')
		return DOM_OK;
	for (;;) {
		size_t n = strcspn(p, ",");
		if (!dom_valid(p, n)) {
			rc = DOM_SYNTAX;
			break;
		}
		if ((rc = dom_add(out, p, n, max)) != DOM_OK)
			break;
		p += n;
		if (*p == '\0')
			return DOM_OK;
		p++;
		while (*p == ' ')
			p++;
	}
	dom_free(out);
	return rc;
}

/* Split on commas and white space; used for map values and odmrd-map sources. */
enum dom_rc dom_parse_list(const char *s, size_t len, struct dom_list *out)
{
	static const char sep[] = ", \t";
	size_t i = 0;

	out->v = NULL;
	out->n = 0;
	while (i < len) {
		if (strchr(sep, s[i]) != NULL && s[i] != '\0') {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && (s[j] == '\0' || strchr(sep, s[j]) == NULL))
			j++;
		if (!dom_valid(s + i, j - i)) {
			dom_free(out);
			return DOM_SYNTAX;
		}
		enum dom_rc rc = dom_add(out, s + i, j - i, (size_t)-1);
		if (rc != DOM_OK) {
			dom_free(out);
			return rc;
		}
		i = j;
	}
	return out->n ? DOM_OK : DOM_SYNTAX;
}

/* Open libgdbm (once); 0, or -1 and a reason in WHY. */
static int dom_gdbm(char *why, size_t whylen)
{
	static const struct dynlib_sym syms[] = {
		{ "gdbm_open", (void **)&gd.open },
		{ "gdbm_fetch", (void **)&gd.fetch },
		{ "gdbm_close", (void **)&gd.close },
		{ "gdbm_errno_location", (void **)&gd.errno_location },
		{ "gdbm_strerror", (void **)&gd.strerror },
		{ "gdbm_check_syserr", (void **)&gd.check_syserr },
	};
	return dynlib_load(DOM_GDBM_SONAME, &gd.handle, syms, sizeof syms / sizeof syms[0], why, whylen);
}

/* Fetch one key; returns 1 found, 0 absent, -1 error. */
static int dom_fetch(GDBM_FILE db, const char *key, datum *val)
{
	datum k = { .dptr = (char *)key, .dsize = (int)strlen(key) };

	*val = gd.fetch(db, k);
	if (val->dptr != NULL)
		return 1;
	return GD_ERRNO == GDBM_ITEM_NOT_FOUND ? 0 : -1;
}

/* See domains.h. */
enum dom_rc dom_lookup(const char *path, const char *user, const char *realm,
		       struct dom_list *out, char *why, size_t whylen)
{
	datum val;
	int found;

	out->v = NULL;
	out->n = 0;
	char lib[256];
	if (dom_gdbm(lib, sizeof lib) != 0) {
		snprintf(why, whylen, "customer map %s: %s", path, lib);
		return DOM_TEMP;
	}
	GDBM_FILE db = gd.open(path, 0, GDBM_READER | GDBM_CLOEXEC, 0, NULL);
	if (db == NULL) {
		int sys = gd.check_syserr(GD_ERRNO) ? errno : 0;
		snprintf(why, whylen, "customer map %s: %s%s%s", path, gd.strerror(GD_ERRNO),
			 sys ? ": " : "", sys ? strerror(sys) : "");
		return DOM_TEMP;
	}
	found = dom_fetch(db, user, &val);
	if (found == 0 && realm != NULL && *realm != '\0') {
		const char *at = strrchr(user, '@');
		if (at != NULL && strcasecmp(at + 1, realm) == 0 && (size_t)(at - user) < 256) {
			char local[256];
			snprintf(local, sizeof local, "%.*s", (int)(at - user), user);
			found = dom_fetch(db, local, &val);
		}
	}
	if (found < 0) {
		snprintf(why, whylen, "customer map %s: %s", path, gd.strerror(GD_ERRNO));
		gd.close(db);
		return DOM_TEMP;
	}
	gd.close(db);
	if (found == 0)
		return DOM_NOUSER;
	enum dom_rc rc = dom_parse_list(val.dptr, (size_t)val.dsize, out);
	free(val.dptr);
	if (rc != DOM_OK) {
		snprintf(why, whylen, "customer map %s: bad value for this user", path);
		return DOM_TEMP;
	}
	return DOM_OK;
}

/* Comma-join for logs. */
const char *dom_join(const struct dom_list *l, char *buf, size_t buflen)
{
	size_t o = 0;

	if (buflen == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		int k = snprintf(buf + o, buflen - o, "%s%s", i ? "," : "", l->v[i]);
		if (k < 0 || (size_t)k >= buflen - o) {
			if (buflen > 4)
				memcpy(buf + buflen - 4, "...", 4);
			return buf;
		}
		o += (size_t)k;
	}
	return buf;
}

/* Free the names and the vector. */
void dom_free(struct dom_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
