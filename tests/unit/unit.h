/*
 * unit.h - shared declarations for the odmrd unit tests: suite constructors, the scriptable fakes
 * behind auth.h and handoff.h, and small temp-file helpers.
 */
#ifndef ODMRD_UNIT_H
#define ODMRD_UNIT_H

#include <check.h>
#include <stddef.h>

#include "auth.h"
#include "handoff.h"

Suite *linebuf_suite(void);
Suite *domains_suite(void);
Suite *config_suite(void);
Suite *map_suite(void);
Suite *session_suite(void);
Suite *relay_suite(void);
Suite *mta_suite(void);

/* ---- fake_auth.c: what the fake SASL layer answers, and what it was asked ---- */
#define FAKE_AUTH_STEPS 8
#define FAKE_AUTH_IN_MAX 16384

struct fake_auth_ret {
	enum auth_rc rc;
	const char *out;   /* challenge / success data, may be NULL */
	unsigned outlen;
};

struct fake_auth_state {
	/* set by tests */
	const char *mechs;                          /* advertised list */
	struct fake_auth_ret seq[FAKE_AUTH_STEPS];  /* answers to auth_start, then each auth_step */
	size_t nseq;                                /* past the end: AUTH_FAIL */
	const char *user;                           /* auth_user() */
	const char *tried;                          /* auth_tried() */
	enum auth_rc reset_rc;                      /* auth_reset() */
	const char *ready_err;                      /* auth_ready() fails with this, if set */
	const char *mechs_tls;                      /* advertised list after auth_tls (NULL: mechs) */
	/* recorded */
	size_t pos;                                 /* answers used so far */
	unsigned n_open, n_ready, n_start, n_step, n_reset, n_close, n_tls;
	unsigned tls_ssf;                           /* last auth_tls() arguments */
	char tls_external[256];                     /* "" for NULL */
	char tls_cb_name[32];                       /* "" for NULL */
	size_t tls_cb_len;
	char mech[64];                              /* last mechanism given to auth_start */
	int in_null;                                /* last input was NULL */
	unsigned inlen;                             /* last input length */
	char in[FAKE_AUTH_IN_MAX];                  /* last input, copied */
};

extern struct fake_auth_state fake_auth;
/* Restore defaults: mechs "CRAM-MD5 PLAIN", no answers, user "alice@example.net". */
void fake_auth_init(void);

/* ---- fake_handoff.c ---- */
#define FAKE_HO_MAX 1024

struct fake_handoff_state {
	/* set by tests */
	enum ho_status status;        /* what handoff_prepare returns */
	void (*on_prepare)(void);     /* called inside handoff_prepare, e.g. to make input pending */
	/* recorded */
	unsigned n_prepare, n_start, n_abort, n_run;
	enum ho_status start_status;  /* what handoff_start returns (HO_READY by default) */
	struct handoff *aborted;      /* last pointer given to handoff_abort */
	char user[256];
	size_t n;                     /* domains given */
	char domains[FAKE_HO_MAX][256];
};

extern struct fake_handoff_state fake_ho;
/* The object handoff_prepare hands out on HO_READY. */
struct handoff *fake_handoff_object(void);
void fake_handoff_init(void);

/* ---- helpers (check_map.c) ---- */
/* Environment variable naming the run's temp root (set by check_main.c; /tmp if unset). */
#define UNIT_TMP_ENV "ODMRD_UNIT_TMP"
/* The temp root. */
const char *unit_tmproot(void);
/* Make a fresh temp directory under the root; returns a malloc'd path. */
char *unit_tmpdir(void);
/* Remove DIR and the plain files in it. */
void unit_rmtree(const char *dir);
/* Build a GDBM map at PATH from NULL-terminated {key, value} pairs; 0 on success. */
int unit_make_map(const char *path, const char *const *kv);

#endif
