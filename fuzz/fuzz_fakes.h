/*
 * fuzz_fakes.h - the control and record interface between fuzz_session.c and the fuzz-only fakes
 * behind auth.h (fuzz/fake_auth.c) and handoff.h (fuzz/fake_handoff.c).
 *
 * Why our own fakes and not tests/unit/fake_*.c: those are scripted per test case (a fixed list of
 * answers, whatever the client sent) and pull in check.h through unit.h. The fuzzer needs fakes that
 * react to what the client actually sent (so it can earn authentication by sending the right
 * response), whose outcomes are chosen by input bytes, and that trap on contract violations
 * (auth_step outside an exchange, handoff_prepare before 235, double abort, ...). Both fakes are
 * deterministic, touch no file system and never sleep.
 */
#ifndef ODMRD_FUZZ_FAKES_H
#define ODMRD_FUZZ_FAKES_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "handoff.h"

/* Trap with a reason on stderr (the reason makes crash triage quicker). */
#define FZ_CHECK(cond)                                                                        \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fz_fail(__FILE__, __LINE__, #cond);                                   \
		}                                                                             \
	} while (0)
void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* ---- fake_auth.c ---- */
/*
 * Advertised: "FAKE CRAM-MD5 X-NOMECH X-TEMP".
 *   FAKE      client-first: AUTH FAKE <b64> evaluates the response at once; AUTH FAKE alone gets
 *             an empty 334 and the next line is the response.
 *   CRAM-MD5  server-first: an initial response gives AUTH_SYNTAX (501); otherwise a fixed
 *             challenge in a 334, then the response.
 *   X-NOMECH  auth_start says AUTH_NOMECH (504 for an advertised name).
 *   X-TEMP    auth_start says AUTH_TEMP (454).
 * Responses (decoded octets, compared exactly):
 *   "alice"             AUTH_OK, user "alice"            (map: a.example,b.example)
 *   "alice@example.org" AUTH_OK, user "alice@example.org" (realm fallback to "alice")
 *   "bob"               AUTH_OK, user "bob"              (not in the map: 450)
 *   "carol"             AUTH_OK, user "carol"            (bad map value: 451)
 *   "final"             AUTH_OK with success data "welcome": 334, then "" gives 235 as alice
 *   "more"              AUTH_CONTINUE, challenge "more?"
 *   "empty"             AUTH_CONTINUE, no challenge data ("334 ")
 *   "echo:XYZ"          AUTH_CONTINUE, challenge XYZ (any length: exercises long 334 lines)
 *   "big"               AUTH_CONTINUE with a 10000-octet challenge (too big to encode: 454)
 *   "nouser"            AUTH_OK but auth_user() NULL (454)
 *   "longuser"          AUTH_OK with a 300-character user (535)
 *   "temp" / "syntax" / "nomech"   AUTH_TEMP / AUTH_SYNTAX / AUTH_NOMECH
 *   anything else       AUTH_FAIL (535)
 */
#define FZ_AUTH_MECHS "FAKE CRAM-MD5 X-NOMECH X-TEMP"
#define FZ_CRAM_CHALLENGE "<1896.697170952@mx.example.net>"

/* Per input: a fresh exchange; auth_reset() will return RESET_RC. */
void fz_auth_begin(enum auth_rc reset_rc);
/* The octets the last auth_start/auth_step returned (for checking the 334 that carries them). */
const char *fz_auth_last_out(unsigned *len);

/* ---- fake_handoff.c ---- */
/*
 * handoff_prepare returns statuses taken two bits at a time from STATUSES (cycling every four
 * calls; 0 HO_READY, 1 HO_NOMAIL, 2 HO_BUSY, 3 HO_TEMPFAIL) and traps unless the caller is
 * authenticated (AUTHENTICATED set by the driver on a 235), the user is alice, and every granted
 * domain is one of alice's. The single handoff object must be released exactly once (run or abort).
 */
void fz_ho_begin(uint8_t statuses);
extern int fz_authenticated;
/* 1 while a prepared handoff is neither run nor aborted. */
int fz_ho_live(void);
unsigned fz_ho_prepares(void);
/* The object HO_READY hands out. */
struct handoff *fz_ho_object(void);

#endif
