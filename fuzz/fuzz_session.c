/*
 * fuzz_session.c - libFuzzer target for the RFC 2645 session core (session.c and what it links:
 * linebuf.c, domains.c with a real GDBM map, config.c, log.c), with the fuzz fakes behind auth.h
 * and handoff.h. It drives one whole session per input, the way odmrd.c does, and traps on any
 * broken protocol or security invariant, not only on memory errors.
 *
 * Input layout (missing header bytes read as 0):
 *   byte 0  flags: bit0 no auth object (AUTH answers 454); bit1 startup error (421);
 *           bit2 auth_reset() fails; bits3-4 what ends a session still open when the input runs
 *           out (0 EOF, 1 idle timeout, 2 session timeout, 3 nothing); bit5 do NOT cut the stream
 *           after each CRLF (so lines can arrive pipelined); bit6 on SA_HANDOFF leave the handoff
 *           to session_free() instead of taking and running it; bit7 TLS configured (a
 *           certificate, io.tls_prepare set: STARTTLS offered; SA_STARTTLS runs a fake handshake).
 *   byte 1  io.pending() answers: bit i%8 for the i-th call (call 0 is the greeting check).
 *   byte 2  handoff_prepare() statuses, two bits per call (0 READY 1 NOMAIL 2 BUSY 3 TEMPFAIL).
 *   byte 3  longest session_input() chunk (0: no limit) - 1 feeds octet by octet.
 *   byte 4  bits0-6: the N-th io.write() fails as if the peer were gone (0: none fails);
 *           bit7: io.tls_prepare() fails (STARTTLS answers 454).
 *   byte 5  config variant: bit0 greet_pause_ms 1 (the fake pause never sleeps); bit1 customer
 *           map missing (451); bit2 max_domains 1; bit3 soft/hard error limits 0/1; bit4
 *           max_auth_failures 1; bit5 hostname NULL (the core must fall back, never print "(null)");
 *           bit6 tls_security_level = encrypt (else may); bit7 tls_auth_only.
 *   rest    the client's octets. Each 0xFF octet is removed and marks an extra chunk boundary.
 * Without bit5 the stream is also cut after every CRLF, as a client waiting for each reply would
 * send it.
 *
 * Fake auth (fuzz/fake_auth.c): mechanisms FAKE CRAM-MD5 X-NOMECH X-TEMP; the response
 * base64("alice") = "YWxpY2U=" authenticates as alice, whose map entry is a.example,b.example.
 * A full good session: "\0\0\0\0\0\0EHLO c.example\r\nAUTH FAKE YWxpY2U=\r\nATRN a.example\r\n".
 *
 * Invariants checked (trap = crash with a reason on stderr and the transcript):
 *   - every write is exactly one well-formed reply: lines of 3 digits (2xx-5xx), '-' or ' ', printable
 *     ASCII text, CRLF; the same code on every line; ' ' on the last line only; <= 512 octets a
 *     line (334: "334 " + <= 12288 octets of base64 + CRLF); the greeting is 220, 421 or 554;
 *   - a 334 carries exactly base64 of what the auth layer returned;
 *   - while the session continues, every complete line got exactly one reply;
 *   - nothing is written after a closing reply (221, 421, 554) or a failed write, a failed write
 *     ends the session, and SA_CLOSE comes only with a closing reply, a 500 or a failed write;
 *   - SA_HANDOFF only after 235, with a prepared handoff, right after a single-line 250, and the
 *     last line the client sent (ending exactly at the chunk's end) is ATRN;
 *   - handoff_prepare only after 235, for alice, with alice's domains (fake_handoff.c); every
 *     prepared handoff is released exactly once (taken and run, or aborted) by session_free;
 *   - auth.h is used in order (fake_auth.c); session_new/session_free balance.
 *   - after the core itself returned SA_CLOSE, more input is ignored and writes nothing;
 *   - STARTTLS: SA_STARTTLS only with TLS configured and not yet up, right after a single-line
 *     220 to a STARTTLS line that ended the chunk, with nothing pending (CVE-2011-0411); STARTTLS
 *     is listed in EHLO only then; after the handshake no 235 or 250-to-ATRN came before it under
 *     encrypt (235 also under tls_auth_only), and an EHLO reply never lists STARTTLS again.
 *
 * Logs go to /dev/null (ODMRD_FUZZ_LOG=file to keep them); ODMRD_FUZZ_VERBOSE=1 prints each
 * transcript to stderr.
 */
#include <ctype.h>
#include <gdbm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_fakes.h"
#include "linebuf.h"
#include "log.h"
#include "session.h"

#define HDR_LEN 6
#define CV_GREET_PAUSE 0x01
#define CV_NO_MAP 0x02
#define CV_ONE_DOMAIN 0x04
#define CV_LOW_ERRORS 0x08
#define CV_ONE_AUTH_FAILURE 0x10
#define CV_NO_HOSTNAME 0x20
#define FL_NO_AUTH 0x01
#define FL_STARTUP_ERR 0x02
#define FL_RESET_FAILS 0x04
#define FL_END_SHIFT 3
#define FL_NO_CRLF_SPLIT 0x20
#define FL_LEAVE_HANDOFF 0x40
#define FL_TLS 0x80
#define CV_ENCRYPT 0x40
#define CV_AUTH_ONLY 0x80
#define WF_TLS_PREPARE_FAILS 0x80

#define CHUNK_MARK 0xFF
#define TRANSCRIPT_MAX 65536

static struct config fz_cf;   /* the base config, set up once */
static struct config fz_cfv;  /* this input's variant (a shallow copy of fz_cf) */
static char fz_dir[256];
static char fz_map[300];
static char fz_nomap[300];
static int fz_verbose;

/* Per-input state of the fake client / io. */
static struct {
	uint8_t pending_mask;
	unsigned pending_calls;
	unsigned write_fail_at;   /* 0: never */
	unsigned writes;          /* write() calls, failed or not */
	unsigned replies;         /* replies delivered, greeting included */
	unsigned call_replies;    /* replies delivered during the current core call */
	int write_failed;
	int closing_sent;         /* 221/421/554 delivered */
	int last_code;
	int last_multiline;
	int last_pending;         /* what io.pending() said last */
	unsigned call_pending;    /* io.pending() calls during the current core call */
	int tls_on;               /* TLS configured for this input */
	int tls_up;               /* the fake handshake has run */
	int tls_prepare_fails;
	unsigned tls_prepares;
	unsigned pauses;
	/* everything fed to session_input, in order */
	char *fed;
	size_t fed_len;
	size_t lines;             /* CRLFs in fed */
	/* bounded transcript for triage */
	char transcript[TRANSCRIPT_MAX];
	size_t tlen;
} fz;

static unsigned fz_sessions_live;

/* Append to the bounded transcript (silently truncated when full). */
static void fz_log(const char *tag, const char *buf, size_t len)
{
	size_t room = sizeof fz.transcript - fz.tlen;
	size_t t = strlen(tag);

	if (room <= t)
		return;
	memcpy(fz.transcript + fz.tlen, tag, t);
	fz.tlen += t;
	room -= t;
	if (len > room)
		len = room;
	memcpy(fz.transcript + fz.tlen, buf, len);
	fz.tlen += len;
}

static void fz_dump(void)
{
	fprintf(stderr, "---- transcript (C: client chunk, S: server write) ----\n");
	fwrite(fz.transcript, 1, fz.tlen, stderr);
	fprintf(stderr, "\n---- end of transcript ----\n");
}

void fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "odmrd fuzz invariant failed at %s:%d: %s\n", file, line, what);
	fz_dump();
	__builtin_trap();
}

/* Remove the temp map and its directory on a normal exit. */
static void fz_cleanup(void)
{
	if (fz_map[0])
		unlink(fz_map);
	if (fz_dir[0])
		rmdir(fz_dir);
}

/* Store KEY -> VALUE in DB or die. */
static void fz_store(GDBM_FILE db, const char *key, const char *value)
{
	datum k = { .dptr = (char *)key, .dsize = (int)strlen(key) };
	datum v = { .dptr = (char *)value, .dsize = (int)strlen(value) };

	if (gdbm_store(db, k, v, GDBM_REPLACE) != 0) {
		fprintf(stderr, "fuzz init: gdbm_store %s: %s\n", key, gdbm_strerror(gdbm_errno));
		abort();
	}
}

/* Replace a config string. */
static void fz_set(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	if (*slot == NULL)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");

	snprintf(fz_dir, sizeof fz_dir, "%s/odmrd-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fz_dir) == NULL) {
		perror("fuzz init: mkdtemp");
		abort();
	}
	snprintf(fz_map, sizeof fz_map, "%s/customers.db", fz_dir);
	snprintf(fz_nomap, sizeof fz_nomap, "%s/missing.db", fz_dir);
	atexit(fz_cleanup);
	GDBM_FILE db = gdbm_open(fz_map, 0, GDBM_NEWDB, 0600, NULL);
	if (db == NULL) {
		fprintf(stderr, "fuzz init: gdbm_open %s: %s\n", fz_map, gdbm_strerror(gdbm_errno));
		abort();
	}
	fz_store(db, "alice", "a.example,b.example");
	fz_store(db, "carol", "not a domain!");  /* DOM_TEMP: bad value for this user */
	gdbm_close(db);

	cf_defaults(&fz_cf);
	fz_set(&fz_cf.hostname, "mx.example.net");
	fz_set(&fz_cf.customer_map, fz_map);
	fz_set(&fz_cf.sasl_realm, "example.org");
	fz_cf.error_delay_ms = 0;
	fz_cf.auth_fail_delay_ms = 0;
	fz_cf.greet_pause_ms = 0;

	const char *logf = getenv("ODMRD_FUZZ_LOG");
	if (log_open(LOG_MAIL, logf && *logf ? logf : "/dev/null") != 0) {
		perror("fuzz init: log_open");
		abort();
	}
	fz_verbose = getenv("ODMRD_FUZZ_VERBOSE") != NULL;
	return 0;
}

/*
 * Check that BUF is one well-formed reply; returns its code, sets *multiline. A 334 must carry
 * exactly base64 of the auth layer's last output.
 */
static int fz_check_reply(const char *buf, size_t len, int *multiline)
{
	int code = -1;
	size_t i = 0, nlines = 0;

	FZ_CHECK(len >= 6);
	while (i < len) {
		size_t j = i;
		while (j < len && buf[j] != '\r' && buf[j] != '\n')
			j++;
		FZ_CHECK(j + 1 < len && buf[j] == '\r' && buf[j + 1] == '\n');
		FZ_CHECK(j - i >= 4);
		FZ_CHECK(buf[i] >= '2' && buf[i] <= '5');
		FZ_CHECK(isdigit((unsigned char)buf[i + 1]) && isdigit((unsigned char)buf[i + 2]));
		int c = (buf[i] - '0') * 100 + (buf[i + 1] - '0') * 10 + (buf[i + 2] - '0');
		FZ_CHECK(code < 0 || c == code);
		code = c;
		for (size_t k = i + 4; k < j; k++)
			FZ_CHECK(buf[k] >= 0x20 && buf[k] < 0x7f);
		FZ_CHECK(j + 2 - i <= (code == 334 ? 4 + (size_t)AUTH_B64_MAX + 2 : 512));
		int last = j + 2 == len;
		FZ_CHECK(buf[i + 3] == (last ? ' ' : '-'));
		nlines++;
		i = j + 2;
	}
	*multiline = nlines > 1;
	FZ_CHECK(memmem(buf, len, "(null)", 6) == NULL);  /* a NULL string given to %s */
	if (code == 334) {
		unsigned want_len, got_len = 0;
		const char *want = fz_auth_last_out(&want_len);
		const char *b64 = buf + 4;
		size_t n = len - 6;
		FZ_CHECK(nlines == 1);
		if (want_len == 0) {
			FZ_CHECK(n == 0);
		} else {
			static char dec[LB_SIZE];
			FZ_CHECK(auth_decode64(b64, (unsigned)n, dec, sizeof dec, &got_len) == 0);
			FZ_CHECK(got_len == want_len && memcmp(dec, want, want_len) == 0);
		}
	}
	return code;
}

static int fz_write(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	int multi;

	fz_log("S: ", buf, len);
	/* Nothing after a closing reply or a failed write. */
	FZ_CHECK(!fz.closing_sent);
	FZ_CHECK(!fz.write_failed);
	int code = fz_check_reply(buf, len, &multi);
	if (fz.replies == 0)
		FZ_CHECK(code == 220 || code == 421 || code == 554);
	fz.writes++;
	if (fz.write_fail_at != 0 && fz.writes == fz.write_fail_at) {
		fz.write_failed = 1;
		fz_log("S: ", "(write failed)\n", 15);
		return -1;
	}
	fz.replies++;
	fz.call_replies++;
	fz.last_code = code;
	fz.last_multiline = multi;
	if (code == 235) {
		fz_authenticated = 1;
		/* No authentication before TLS where the configuration wants TLS first. */
		if (fz.tls_on && !fz.tls_up)
			FZ_CHECK(fz_cfv.tls_security_level != CF_TLS_ENCRYPT && !fz_cfv.tls_auth_only);
	}
	if (code == 250 && memmem(buf, len, "STARTTLS", 8) != NULL)
		FZ_CHECK(fz.tls_on && !fz.tls_up);
	if (code == 221 || code == 421 || code == 554)
		fz.closing_sent = 1;
	return 0;
}

static void fz_pause(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
	fz.pauses++;  /* record, never sleep */
}

static int fz_pending(void *ctx)
{
	(void)ctx;
	fz.call_pending++;
	fz.last_pending = (fz.pending_mask >> (fz.pending_calls++ % 8)) & 1;
	return fz.last_pending;
}

static int fz_tls_prepare(void *ctx)
{
	(void)ctx;
	FZ_CHECK(fz.tls_on && !fz.tls_up);
	FZ_CHECK(!fz.last_pending);   /* checked before: nothing of the client's may be waiting */
	fz.tls_prepares++;
	return fz.tls_prepare_fails ? -1 : 0;
}

/* The client line that ends at the end of what was fed, if it is VERB alone or with arguments. */
static int fz_last_line_is(const char *verb);

/* The client line that ends at the end of what was fed (which must end in CRLF). */
static int fz_last_line_is(const char *verb)
{
	size_t vl = strlen(verb);
	size_t end = fz.fed_len;

	if (end < 2 || fz.fed[end - 2] != '\r' || fz.fed[end - 1] != '\n')
		return 0;
	end -= 2;
	size_t start = end;
	while (start >= 2 && !(fz.fed[start - 2] == '\r' && fz.fed[start - 1] == '\n'))
		start--;
	if (start < 2)
		start = 0;
	size_t n = end - start;
	return n >= vl && strncasecmp(fz.fed + start, verb, vl) == 0 && (n == vl || fz.fed[start + vl] == ' ');
}

/* Check what a core call returned against what was written during it. */
static void fz_after_call(enum sess_action a)
{
	if (fz.write_failed)
		FZ_CHECK(a == SA_CLOSE);
	if (fz.closing_sent)
		FZ_CHECK(a == SA_CLOSE);
	switch (a) {
	case SA_CONTINUE:
		/* The client waits for each reply: one reply per complete line, greeting aside. */
		FZ_CHECK(fz.replies == fz.lines + 1);
		FZ_CHECK(!fz_ho_live());
		break;
	case SA_CLOSE:
		FZ_CHECK(fz.write_failed || fz.closing_sent || fz.last_code == 500);
		FZ_CHECK(!fz_ho_live());
		break;
	case SA_HANDOFF:
		FZ_CHECK(fz_authenticated);
		FZ_CHECK(fz_ho_live());
		FZ_CHECK(fz.call_replies >= 1 && fz.last_code == 250 && !fz.last_multiline);
		FZ_CHECK(fz_last_line_is("ATRN"));
		FZ_CHECK(fz.replies == fz.lines + 1);
		if (fz.tls_on && !fz.tls_up)
			FZ_CHECK(fz_cfv.tls_security_level != CF_TLS_ENCRYPT);
		break;
	case SA_STARTTLS:
		FZ_CHECK(fz.tls_on && !fz.tls_up && !fz.tls_prepare_fails && !fz_authenticated);
		FZ_CHECK(fz.call_replies >= 1 && fz.last_code == 220 && !fz.last_multiline);
		/* the core asked whether more octets wait, after this line, and was told no */
		FZ_CHECK(fz_last_line_is("STARTTLS") && fz.call_pending > 0 && !fz.last_pending);
		FZ_CHECK(fz.replies == fz.lines + 1);
		FZ_CHECK(!fz_ho_live());
		break;
	default:
		FZ_CHECK(!"unknown sess_action");
	}
}

/* Feed one chunk. */
static enum sess_action fz_feed(struct session *s, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n' && (i > 0 ? buf[i - 1] : (fz.fed_len ? fz.fed[fz.fed_len - 1] : 0)) == '\r')
			fz.lines++;
	/* buf already lives at fz.fed + fz.fed_len */
	fz.fed_len += len;
	fz_log("C: ", buf, len);
	if (buf[len - 1] != '\n')
		fz_log("", "\n", 1);
	fz.call_replies = 0;
	fz.call_pending = 0;
	enum sess_action a = session_input(s, buf, len);
	fz_after_call(a);
	if (a == SA_STARTTLS) {
		/* The handshake "succeeds": from here on the client speaks through TLS. */
		static const struct tls_info info = { "TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, false,
						      false, false, "", "" };
		static const unsigned char cb[32];
		struct sess_tls t = { &info, "tls-exporter", cb, sizeof cb };
		session_tls_started(s, &t);
		fz.tls_up = 1;
		fz_log("C: ", "(TLS handshake)\n", 16);
		a = SA_CONTINUE;
	}
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[HDR_LEN] = { 0 };
	size_t h = size < HDR_LEN ? size : HDR_LEN;

	memcpy(hdr, data, h);
	data += h;
	size -= h;

	memset(&fz, 0, offsetof(__typeof__(fz), transcript));
	fz.tlen = 0;
	fz.fed = malloc(size + 1);
	if (fz.fed == NULL)
		abort();
	fz.pending_mask = hdr[1];
	fz.write_fail_at = hdr[4] & ~WF_TLS_PREPARE_FAILS;
	fz.tls_prepare_fails = (hdr[4] & WF_TLS_PREPARE_FAILS) != 0;
	fz.tls_on = (hdr[0] & FL_TLS) != 0;
	fz_auth_begin((hdr[0] & FL_RESET_FAILS) ? AUTH_TEMP : AUTH_OK);
	fz_cfv = fz_cf;
	if (hdr[5] & CV_GREET_PAUSE)
		fz_cfv.greet_pause_ms = 1;
	if (hdr[5] & CV_NO_MAP)
		fz_cfv.customer_map = fz_nomap;
	if (hdr[5] & CV_ONE_DOMAIN)
		fz_cfv.max_domains = 1;
	if (hdr[5] & CV_LOW_ERRORS) {
		fz_cfv.soft_error_limit = 0;
		fz_cfv.hard_error_limit = 1;
	}
	if (hdr[5] & CV_ONE_AUTH_FAILURE)
		fz_cfv.max_auth_failures = 1;
	if (hdr[5] & CV_NO_HOSTNAME)
		fz_cfv.hostname = NULL;
	if (fz.tls_on) {
		fz_cfv.tls_cert_file = fz_map;   /* any path: the fake handshake never reads it */
		fz_cfv.tls_key_file = fz_map;
		fz_cfv.tls_security_level = (hdr[5] & CV_ENCRYPT) ? CF_TLS_ENCRYPT : CF_TLS_MAY;
		fz_cfv.tls_auth_only = (hdr[5] & CV_AUTH_ONLY) != 0;
	}
	fz_ho_begin(hdr[2]);

	char err[64];
	struct auth *auth = (hdr[0] & FL_NO_AUTH) ? NULL : auth_open(&fz_cfv, NULL, NULL, err, sizeof err);
	struct session_io io = { NULL, fz_write, fz_pause, fz_pending, fz.tls_on ? fz_tls_prepare : NULL };
	struct session *s = session_new(&fz_cfv, &io, auth, "192.0.2.1");
	FZ_CHECK(s != NULL);
	fz_sessions_live++;

	enum sess_action a = session_start(s, (hdr[0] & FL_STARTUP_ERR) ? "fuzz startup error" : NULL);
	FZ_CHECK(fz.replies + fz.write_failed == 1);
	if (hdr[0] & FL_STARTUP_ERR)
		FZ_CHECK(a == SA_CLOSE && (fz.write_failed || fz.last_code == 421));
	else if (!fz.write_failed)
		FZ_CHECK(fz.last_code == (fz.pending_mask & 1 ? 554 : 220));
	FZ_CHECK(a != SA_HANDOFF);
	if (a == SA_CONTINUE)
		FZ_CHECK(fz.last_code == 220);

	/*
	 * Cut the stream: at 0xFF marks, after each CRLF (unless bit5), and every hdr[3] octets. The
	 * current chunk is built in place at fz.fed + fz.fed_len, so fz.fed stays the exact concatenation
	 * of what was fed.
	 */
	size_t maxchunk = hdr[3];
	size_t cur = 0;  /* octets of the current chunk, stored at fz.fed + fz.fed_len */
	for (size_t i = 0; i < size && a == SA_CONTINUE; i++) {
		int cut = 0;
		if (data[i] == CHUNK_MARK) {
			cut = 1;
		} else {
			fz.fed[fz.fed_len + cur] = (char)data[i];
			cur++;
			char prev = cur >= 2 ? fz.fed[fz.fed_len + cur - 2] : (fz.fed_len ? fz.fed[fz.fed_len - 1] : 0);
			if (!(hdr[0] & FL_NO_CRLF_SPLIT) && data[i] == '\n' && prev == '\r')
				cut = 1;
			if (maxchunk && cur >= maxchunk)
				cut = 1;
		}
		if (cut && cur > 0) {
			a = fz_feed(s, fz.fed + fz.fed_len, cur);
			cur = 0;
		}
	}
	if (a == SA_CONTINUE && cur > 0)
		a = fz_feed(s, fz.fed + fz.fed_len, cur);

	int ended_by_eof = 0;
	if (a == SA_CONTINUE) {
		unsigned before = fz.writes;
		fz.call_replies = 0;
		switch ((hdr[0] >> FL_END_SHIFT) & 3) {
		case 0:
			a = session_eof(s);
			ended_by_eof = 1;
			FZ_CHECK(a == SA_CLOSE && fz.writes == before);
			break;
		case 1:
		case 2:
			a = session_timeout(s, ((hdr[0] >> FL_END_SHIFT) & 3) == 1);
			FZ_CHECK(a == SA_CLOSE && fz.writes == before + 1);
			FZ_CHECK(fz.write_failed || fz.last_code == 421);
			break;
		default:
			break;
		}
	}
	/* SA_CLOSE from the core itself (not from session_eof, after which nothing may be fed). */
	if (a == SA_CLOSE && !ended_by_eof) {
		unsigned before = fz.writes;
		FZ_CHECK(session_input(s, "NOOP\r\n", 6) == SA_CLOSE && fz.writes == before);
	}
	if (a == SA_HANDOFF) {
		if (!(hdr[0] & FL_LEAVE_HANDOFF)) {
			struct handoff *ho = session_take_handoff(s);
			FZ_CHECK(ho == fz_ho_object());
			FZ_CHECK(session_take_handoff(s) == NULL);
			struct ho_stats st = { 0 };
			handoff_run(ho, NULL, &st);
			session_set_result(s, st.result ? st.result : "done");
		}
	} else {
		FZ_CHECK(!fz_ho_live());
	}
	unsigned writes = fz.writes;
	session_free(s);
	fz_sessions_live--;
	FZ_CHECK(fz.writes == writes);  /* session_free never writes */
	FZ_CHECK(!fz_ho_live());        /* every prepared handoff released exactly once */
	FZ_CHECK(fz_sessions_live == 0);
	auth_close(auth);
	if (fz_verbose)
		fz_dump();
	/* Free per input, so libFuzzer's malloc/free balance check does not re-run every input. */
	free(fz.fed);
	fz.fed = NULL;
	return 0;
}
