/*
 * domains.h - RFC 2645 domain syntax, the ATRN argument, and the GDBM customer map.
 */
#ifndef ODMRD_DOMAINS_H
#define ODMRD_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>

#define DOM_NAME_MAX 253   /* RFC 1035 presentation length, no trailing dot */
#define DOM_LABEL_MAX 63

enum dom_rc {
	DOM_OK,
	DOM_SYNTAX,    /* not RFC 2645 ABNF: 501 */
	DOM_TOO_MANY,  /* more domains than allowed: 501 */
	DOM_NOUSER,    /* map has no entry for the user */
	DOM_TEMP       /* map missing, unreadable, locked or corrupt: 451 */
};

/* A list of lower-case, validated domain names. */
struct dom_list {
	char **v;
	size_t n;
};

/* True if S (LEN octets) is a domain by RFC 2645's ABNF and DNS length limits. */
bool dom_valid(const char *s, size_t len);
/*
 * Parse the ATRN argument (text after "ATRN ", may be empty). Duplicates are dropped; names are
 * lowered. Commas may be followed by spaces.
 */
enum dom_rc dom_parse_atrn(const char *arg, size_t max, struct dom_list *out);
/* Split a map value or odmrd-map source field (commas and/or spaces) into OUT, validating each. */
enum dom_rc dom_parse_list(const char *s, size_t len, struct dom_list *out);
/* True if NAME is in L. */
bool dom_contains(const struct dom_list *l, const char *name);
/*
 * Look USER up in the GDBM map at PATH (opened read-only for this call only). If USER is
 * "local@REALM" with REALM the configured realm and has no entry, "local" is tried too.
 * On DOM_TEMP, WHY says what went wrong.
 */
enum dom_rc dom_lookup(const char *path, const char *user, const char *realm,
		       struct dom_list *out, char *why, size_t whylen);
/* Join L with commas into BUF (for logs and replies); truncates with "...". */
const char *dom_join(const struct dom_list *l, char *buf, size_t buflen);
void dom_free(struct dom_list *l);

#endif
