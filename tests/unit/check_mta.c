/*
 * check_mta.c - the MTA side without an MTA: the queue-listing parsers on outputs recorded from
 * the real Postfix 3.7 and Sendmail 8.17 here (tests/unit/data/, see its README), the exact
 * domain match, Sendmail's -qI substring rule, the privsep request protocol (what the root helper
 * refuses, and the only argvs it builds), and run_dir's ownership/mode checks and socket mode.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta.h"
#include "privsep.h"
#include "proc.h"
#include "rundir.h"
#include "unit.h"

#define DATA_DIR "tests/unit/data/"

static struct config cf;
static struct mta_run run;
static char *granted[4];

/* A run for the granted domains D (NULL-terminated, at most 3). */
static void run_for(const char *d0, const char *d1)
{
	mta_run_free(&run);
	granted[0] = (char *)d0;
	granted[1] = (char *)d1;
	run.cf = &cf;
	run.dom = granted;
	run.n = d1 ? 2 : 1;
}

/* Feed every line of a recorded listing to FN. */
static void feed(const char *file, void (*fn)(struct mta_run *, const char *, struct mta_scan *))
{
	char line[4096];
	FILE *f = fopen(file, "r");

	ck_assert_msg(f != NULL, "%s: %s (run from the top of the tree)", file, strerror(errno));
	mta_scan_reset(&run.scan);
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		fn(&run, line, &run.scan);
	}
	fclose(f);
}

/* The found record for ID in the last listing, or NULL. */
static const struct mta_found *found(const char *id)
{
	for (size_t i = 0; i < run.scan.nfound; i++)
		if (!strcmp(run.scan.found[i].id, id))
			return &run.scan.found[i];
	return NULL;
}

static void setup(void)
{
	cf_defaults(&cf);
	memset(&run, 0, sizeof run);
}

static void teardown(void)
{
	mta_run_free(&run);
	cf_free(&cf);
}

START_TEST(test_ours_exact_domain)
{
	run_for("a.example", NULL);
	ck_assert(mta_ours(&run, "u@a.example", 11));
	ck_assert(mta_ours(&run, "U@A.Example", 11));
	ck_assert(mta_ours(&run, "<u@a.example>", 13));
	ck_assert(mta_ours(&run, "\"x@b.example\"@a.example", 23));
	ck_assert(!mta_ours(&run, "bob@a.example.com", 17));
	ck_assert(!mta_ours(&run, "bob@xa.example", 14));
	ck_assert(!mta_ours(&run, "bob@a.example.", 14));
	ck_assert(!mta_ours(&run, "a.example", 9));
	ck_assert(!mta_ours(&run, "u@a.example", 10));  /* only LEN octets count */
}
END_TEST

START_TEST(test_postqueue_j_recorded)
{
	run_for("a.example", NULL);
	feed(DATA_DIR "postqueue-j.txt", pf_scan_line);
	ck_assert(!run.scan.bad);
	/* deferred by defer_transports: u1, U2@A.EXAMPLE, the null sender's, the quoted local part */
	const char *waiting[] = { "A7E2E51648B", "B301D51649D", "BAC3E5164A4", "B054A516494" };
	for (size_t i = 0; i < 4; i++) {
		const struct mta_found *f = found(waiting[i]);
		ck_assert_msg(f != NULL, "%s not found", waiting[i]);
		ck_assert_int_eq(f->where, MQ_WAITING);
		ck_assert(f->transport_deferred);
		ck_assert_uint_eq(f->rcpts, 1);
	}
	/* active (lmtp waiting at another domain's socket): one recipient of ours, one of c.example */
	ck_assert_int_eq(found("AA992516489")->where, MQ_MOVING);
	ck_assert_uint_eq(found("AA992516489")->rcpts, 1);
	ck_assert_int_eq(found("B804F5164A2")->where, MQ_HELD);
	/* never: bob@a.example.com (a substring match would take it), b.example */
	ck_assert_ptr_null(found("AC3D551648E"));
	ck_assert_ptr_null(found("B54C451649F"));
	ck_assert_uint_eq(run.scan.nfound, 6);
	ck_assert_uint_eq(run.scan.rcpts_waiting, 4);
	ck_assert_uint_eq(run.scan.rcpts_moving, 1);
	ck_assert_uint_eq(run.scan.rcpts_held, 1);
	ck_assert_str_eq(run.scan.reason, "deferred transport");
}
END_TEST

START_TEST(test_postqueue_j_other_domains)
{
	run_for("a.example.com", "b.example");
	feed(DATA_DIR "postqueue-j.txt", pf_scan_line);
	ck_assert_uint_eq(run.scan.nfound, 2);
	const struct mta_found *f = found("AC3D551648E");
	ck_assert_ptr_nonnull(f);
	ck_assert(!f->transport_deferred);  /* tried and refused: not the flush race */
	ck_assert_ptr_nonnull(found("B54C451649F"));  /* a 56-character address, in full */
	ck_assert_ptr_nonnull(strstr(run.scan.reason, "said: 450 4.2.1"));
}
END_TEST

START_TEST(test_postqueue_j_bad_line)
{
	run_for("a.example", NULL);
	mta_scan_reset(&run.scan);
	pf_scan_line(&run, "", &run.scan);
	ck_assert(!run.scan.bad);
	pf_scan_line(&run, "{\"queue_name\": \"deferred\", \"queue_id\": \"A1\", \"recipients\": [", &run.scan);
	ck_assert(run.scan.bad);   /* a cut-off listing could hide mail: not trusted */
	mta_scan_reset(&run.scan);
	pf_scan_line(&run, "{\"queue_name\": \"deferred\"}", &run.scan);
	ck_assert(run.scan.bad);
}
END_TEST

START_TEST(test_sendmail_bp_recorded)
{
	run_for("a.example", NULL);
	feed(DATA_DIR "sendmail-bp-v.txt", sm_scan_line);
	sm_scan_end(&run.scan);
	ck_assert(!run.scan.bad);
	ck_assert_uint_eq(run.scan.nids, 7);
	ck_assert_ptr_nonnull(found("6B74jliW007515"));   /* U2@A.EXAMPLE */
	ck_assert_uint_eq(found("6B74jliW007515")->size, 5);   /* the size column, not the priority */
	ck_assert_ptr_nonnull(found("6B74jldj007446"));   /* u1 */
	ck_assert_ptr_nonnull(found("6B74jlL5007501"));   /* "john doe"@a.example */
	ck_assert_uint_eq(found("6B74jlTc007561")->rcpts, 2);
	ck_assert_uint_eq(found("6B74jl7N007462")->rcpts, 1);  /* locked ("*"), shared with c.example */
	ck_assert_ptr_null(found("6B74jlns007483"));      /* bob@a.example.com */
	ck_assert_ptr_null(found("6B74jlLl007539"));      /* b.example */
	ck_assert_uint_eq(run.scan.nfound, 5);
	ck_assert_uint_eq(run.scan.rcpts_waiting, 6);
}
END_TEST

START_TEST(test_sendmail_bp_reason)
{
	run_for("a.example.com", NULL);
	feed(DATA_DIR "sendmail-bp-v.txt", sm_scan_line);
	sm_scan_end(&run.scan);
	ck_assert_uint_eq(run.scan.nfound, 1);
	ck_assert_ptr_nonnull(found("6B74jlns007483"));
	ck_assert_ptr_nonnull(strstr(run.scan.reason, "makeconnection_ds: unsafe domain socket"));
	/* a reason quoting the customer's reply keeps its own parentheses */
	mta_scan_reset(&run.scan);
	sm_scan_line(&run, "6B74jldj007446        5      30021 Dec  7 04:45 s@x.test", &run.scan);
	sm_scan_line(&run, "                 (Deferred: 450 4.2.1 <t@a.example.com>: busy (test))", &run.scan);
	sm_scan_line(&run, "\t\t\t\t\t\tt@a.example.com", &run.scan);
	ck_assert_str_eq(run.scan.reason, "Deferred: 450 4.2.1 <t@a.example.com>: busy (test)");
}
END_TEST

START_TEST(test_sendmail_empty_queue)
{
	run_for("a.example", NULL);
	mta_scan_reset(&run.scan);
	sm_scan_line(&run, "/var/spool/mqueue is empty", &run.scan);
	sm_scan_line(&run, "\t\tTotal requests: 0", &run.scan);
	sm_scan_line(&run, "Mail queue is empty", &run.scan);
	sm_scan_end(&run.scan);
	ck_assert_uint_eq(run.scan.nfound + run.scan.nids + run.scan.rcpts_waiting, 0);
}
END_TEST

START_TEST(test_sendmail_substring_id_left_out)
{
	/* -qI6B74jldj00744 would also run 6B74jldj007446 (another customer's): never in a run. */
	run_for("a.example", NULL);
	mta_scan_reset(&run.scan);
	sm_scan_line(&run, "6B74jldj007446        5      30021 Dec  7 04:45 s@x.test", &run.scan);
	sm_scan_line(&run, "\t\t\t\t\t\tu@c.example", &run.scan);
	sm_scan_line(&run, "6B74jldj00744        5      30021 Dec  7 04:45 s@x.test", &run.scan);
	sm_scan_line(&run, "\t\t\t\t\t\tu@a.example", &run.scan);
	sm_scan_line(&run, "6B74jlXX007500        5      30021 Dec  7 04:45 s@x.test", &run.scan);
	sm_scan_line(&run, "\t\t\t\t\t\tv@a.example", &run.scan);
	sm_scan_end(&run.scan);
	ck_assert_uint_eq(run.scan.nfound, 1);
	ck_assert_str_eq(run.scan.found[0].id, "6B74jlXX007500");
	ck_assert_uint_eq(run.scan.rcpts_waiting, 2);  /* still counted: left queued */
}
END_TEST

/* Queue ID number I of a made-up Sendmail queue, in BUF. */
static const char *sm_id(char *buf, size_t len, int i)
{
	snprintf(buf, len, "6B7%05d%06d", i, 100000 + i);
	return buf;
}

START_TEST(test_many_ids_indexed)
{
	/* 3 000 messages of ours, one listed twice: each found once, every ID known once. */
	char line[200], id[PS_ID_MAX + 1];
	const int n = 3000;

	run_for("a.example", NULL);
	for (int pass = 0; pass < 2; pass++) {
		mta_scan_reset(&run.scan);
		for (int i = 0; i <= n; i++) {
			snprintf(line, sizeof line, "%s*  %d  30021 Dec  7 04:45 s@x.test", sm_id(id, sizeof id, i % n),
				 10240 + i % n);
			sm_scan_line(&run, line, &run.scan);
			snprintf(line, sizeof line, "\t\t\tu%d@a.example", i);
			sm_scan_line(&run, line, &run.scan);
		}
		sm_scan_end(&run.scan);
		ck_assert_uint_eq(run.scan.nfound, n);
		ck_assert_uint_eq(run.scan.rcpts_waiting, n + 1);
		ck_assert_uint_eq(found(sm_id(id, sizeof id, 0))->rcpts, 2);
		ck_assert_uint_eq(found(sm_id(id, sizeof id, n - 1))->rcpts, 1);
		ck_assert_uint_eq(found(sm_id(id, sizeof id, n - 1))->size, 10240 + n - 1);
		for (size_t i = 0; i < run.scan.nfound; i++)
			ck_assert_ptr_nonnull(mta_id_get(&run, run.scan.found[i].id, true));
		ck_assert_uint_eq(run.nid, n);
	}
	struct mta_id *a = mta_id_get(&run, sm_id(id, sizeof id, 1234), false);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->id, id);
	ck_assert_ptr_eq(mta_id_get(&run, id, true), a);
	ck_assert_ptr_null(mta_id_get(&run, "6B7xxxxx999999", false));
	/* A shorter ID inside a longer one is still left out among thousands of the usual length. */
	mta_scan_reset(&run.scan);
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof line, "%s  10240 Dec  7 04:45 s@x.test", sm_id(id, sizeof id, i));
		sm_scan_line(&run, line, &run.scan);
		sm_scan_line(&run, "\t\t\tu@a.example", &run.scan);
	}
	snprintf(line, sizeof line, "%.13s  10240 Dec  7 04:45 s@x.test", sm_id(id, sizeof id, 77));
	sm_scan_line(&run, line, &run.scan);
	sm_scan_line(&run, "\t\t\tu@a.example", &run.scan);
	sm_scan_end(&run.scan);
	ck_assert_uint_eq(run.scan.nfound, n);
	ck_assert_ptr_null(found("6B70007710007"));   /* the first 13 of 6B700077100077 */
}
END_TEST

/* ---- privsep: the typed requests ---- */

/* ps_argv for REQ: 0 and the argv joined by spaces in OUT, or -1. */
static int argv_of(const struct ps_req *req, char *out, size_t len)
{
	struct ps_argv a;
	char why[200];

	out[0] = '\0';
	if (ps_argv(&cf, req, &a, why, sizeof why) < 0)
		return -1;
	for (int i = 0, o = 0; i < a.n; i++)
		o += snprintf(out + o, len - (size_t)o, "%s%s", i ? " " : "", a.v[i]);
	ck_assert_ptr_null(a.v[a.n]);
	return 0;
}

START_TEST(test_privsep_postfix_argv)
{
	char out[1024];
	const char *id = "A7E2E51648B", *dom = "a.example";
	struct ps_req list = { CF_MTA_POSTFIX, PS_LIST, 0, { NULL } };
	struct ps_req flush = { CF_MTA_POSTFIX, PS_FLUSH, 1, { dom } };
	struct ps_req rel = { CF_MTA_POSTFIX, PS_RELEASE, 1, { id } };

	cf.postfix_config_dir = strdup("/etc/postfix-odmr");
	ck_assert_int_eq(argv_of(&list, out, sizeof out), 0);
	ck_assert_str_eq(out, "/usr/sbin/postqueue -c /etc/postfix-odmr -j");
	ck_assert_int_eq(argv_of(&flush, out, sizeof out), 0);
	ck_assert_str_eq(out, "/usr/sbin/postqueue -c /etc/postfix-odmr -s a.example");
	ck_assert_int_eq(argv_of(&rel, out, sizeof out), 0);
	ck_assert_str_eq(out, "/usr/sbin/postqueue -c /etc/postfix-odmr -i A7E2E51648B");
}
END_TEST

START_TEST(test_privsep_sendmail_argv)
{
	static char out[PS_ITEMS_MAX * (PS_ID_MAX + 8)];
	struct ps_req list = { CF_MTA_SENDMAIL, PS_LIST, 0, { NULL } };
	struct ps_req rel = { CF_MTA_SENDMAIL, PS_RELEASE, 2, { "6B74jldj007446", "6B74jlTc007561" } };

	cf.mta = CF_MTA_SENDMAIL;
	cf.sendmail_cf = strdup("/etc/mail/odmr.cf");
	ck_assert_int_eq(argv_of(&list, out, sizeof out), 0);
	ck_assert_str_eq(out, "/usr/sbin/sendmail -C /etc/mail/odmr.cf -bp -v");
	ck_assert_int_eq(argv_of(&rel, out, sizeof out), 0);
	ck_assert_str_eq(out, "/usr/sbin/sendmail -C /etc/mail/odmr.cf -qf -qI6B74jldj007446 -qI6B74jlTc007561");
	/* the most IDs one request may carry all fit */
	static char ids[PS_ITEMS_MAX][PS_ID_MAX + 1];
	struct ps_req big = { CF_MTA_SENDMAIL, PS_RELEASE, PS_ITEMS_MAX, { NULL } };
	for (int i = 0; i < PS_ITEMS_MAX; i++) {
		memset(ids[i], 'Z', PS_ID_MAX);
		ids[i][PS_ID_MAX] = '\0';
		big.item[i] = ids[i];
	}
	ck_assert_int_eq(argv_of(&big, out, sizeof out), 0);
}
END_TEST

/* The helper's report waiting on SOCK: "S lane status" as three numbers in OUT, or "none". */
static const char *helper_report(int sock, char *out, size_t len)
{
	unsigned char r[8];
	ssize_t n = recv(sock, r, sizeof r, MSG_DONTWAIT);

	if (n == 3 && r[0] == 'S')
		snprintf(out, len, "S %u %u", r[1], r[2]);
	else
		snprintf(out, len, n < 0 ? "none" : "bad %zd", n);
	return out;
}

/* Message TYPE for LANE carrying REQ (NULL: nothing after the lane) into BUF; its length. */
static size_t helper_msg(char type, int lane, const struct ps_req *req, char *buf, size_t len)
{
	buf[0] = type;
	buf[1] = (char)lane;
	return 2 + (req ? ps_encode(req, buf + 2, len - 2) : 0);
}

START_TEST(test_helper_lanes)
{
	/* The root helper trusts nothing the session sends: every malformed message is refused. */
	struct config hc = { .mta = CF_MTA_SENDMAIL, .sendmail = "/bin/true" };
	struct ps_req rel = { CF_MTA_SENDMAIL, PS_RELEASE, 1, { "6B74jldj007446" } };
	struct ps_job job[PS_LANES + 1];
	char buf[PS_MSG_MAX + 2], rep[32];
	int sv[2];

	for (unsigned l = 0; l <= PS_LANES; l++)
		job[l] = (struct ps_job){ .fd = -1 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	/* no such lane: nothing started, nothing to report on */
	ps_serve(&hc, sv[0], job, buf, helper_msg('R', 0, &rel, buf, sizeof buf), -1);
	ps_serve(&hc, sv[0], job, buf, helper_msg('R', PS_LANES + 1, &rel, buf, sizeof buf), -1);
	ps_serve(&hc, sv[0], job, "R", 1, -1);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "none");
	/* an unknown type, an empty request, a stop for an idle lane */
	ps_serve(&hc, sv[0], job, buf, helper_msg('X', 1, &rel, buf, sizeof buf), -1);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "S 1 255");
	ps_serve(&hc, sv[0], job, buf, helper_msg('R', 1, NULL, buf, sizeof buf), -1);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "S 1 255");
	ps_serve(&hc, sv[0], job, buf, helper_msg('K', 2, NULL, buf, sizeof buf), -1);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "none");
	/* a lane whose job runs takes no second request, and that job is left alone */
	job[2].pid = getpid();
	ps_serve(&hc, sv[0], job, buf, helper_msg('R', 2, &rel, buf, sizeof buf), -1);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "S 2 255");
	ck_assert_int_eq(job[2].pid, getpid());
	ck_assert_int_eq(job[2].kill_at, 0);
	job[2].pid = 0;
	/* a good request runs on its lane and its end is reported there */
	ps_serve(&hc, sv[0], job, buf, helper_msg('R', 1, &rel, buf, sizeof buf), -1);
	ck_assert_int_gt(job[1].pid, 0);
	for (int i = 0; i < 500 && job[1].pid > 0; i++) {
		usleep(10000);
		ps_job_reap(sv[0], &job[1], 1);
	}
	ck_assert_int_eq(job[1].pid, 0);
	ck_assert_str_eq(helper_report(sv[1], rep, sizeof rep), "S 1 0");
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_privsep_refusals)
{
	char out[1024];
	const char *longid = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";  /* 33 */
	struct ps_req bad[] = {
		{ CF_MTA_SENDMAIL, PS_LIST, 0, { NULL } },            /* another MTA than configured */
		{ CF_MTA_EXEC, PS_LIST, 0, { NULL } },
		{ CF_MTA_POSTFIX, (enum ps_kind)9, 0, { NULL } },    /* unknown kind */
		{ CF_MTA_POSTFIX, PS_LIST, 1, { "a.example" } },     /* list takes nothing */
		{ CF_MTA_POSTFIX, PS_FLUSH, 0, { NULL } },
		{ CF_MTA_POSTFIX, PS_FLUSH, 1, { "-qf" } },          /* not a domain: never an option */
		{ CF_MTA_POSTFIX, PS_FLUSH, 1, { "a..example" } },
		{ CF_MTA_POSTFIX, PS_FLUSH, 2, { "a.example", "b.example" } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 0, { NULL } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 2, { "A1", "B2" } },   /* postqueue takes one -i */
		{ CF_MTA_POSTFIX, PS_RELEASE, 1, { "-f" } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 1, { "A1 -f" } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 1, { "../A1" } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 1, { "" } },
		{ CF_MTA_POSTFIX, PS_RELEASE, 1, { longid } },
		{ CF_MTA_POSTFIX, PS_RELEASE, PS_ITEMS_MAX + 1, { NULL } },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(argv_of(&bad[i], out, sizeof out) < 0, "request %zu accepted: %s", i, out);
	/* Sendmail: no flush by domain, no empty or malformed release. */
	cf.mta = CF_MTA_SENDMAIL;
	struct ps_req sbad[] = {
		{ CF_MTA_SENDMAIL, PS_FLUSH, 1, { "a.example" } },
		{ CF_MTA_SENDMAIL, PS_RELEASE, 0, { NULL } },
		{ CF_MTA_SENDMAIL, PS_RELEASE, 2, { "6B74jldj007446", "-bd" } },
		{ CF_MTA_POSTFIX, PS_LIST, 0, { NULL } },
	};
	for (size_t i = 0; i < sizeof sbad / sizeof sbad[0]; i++)
		ck_assert_msg(argv_of(&sbad[i], out, sizeof out) < 0, "sendmail request %zu accepted", i);
	/* mta = exec runs no MTA command at all. */
	cf.mta = CF_MTA_EXEC;
	struct ps_req ex = { CF_MTA_EXEC, PS_LIST, 0, { NULL } };
	ck_assert_int_lt(argv_of(&ex, out, sizeof out), 0);
}
END_TEST

START_TEST(test_privsep_wire)
{
	char buf[PS_MSG_MAX], why[200];
	struct ps_req in = { CF_MTA_SENDMAIL, PS_RELEASE, 2, { "6B74jldj007446", "X1" } }, out;
	size_t n = ps_encode(&in, buf, sizeof buf);

	ck_assert_uint_eq(n, 4 + 15 + 3);
	ck_assert_int_eq(ps_decode(buf, n, &out, why, sizeof why), 0);
	ck_assert_int_eq(out.mta, CF_MTA_SENDMAIL);
	ck_assert_int_eq(out.kind, PS_RELEASE);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_str_eq(out.item[1], "X1");
	/* malformed messages */
	ck_assert_int_lt(ps_decode(buf, 3, &out, why, sizeof why), 0);         /* short */
	ck_assert_int_lt(ps_decode(buf, n - 1, &out, why, sizeof why), 0);     /* last item unterminated */
	buf[n] = 'x';
	ck_assert_int_lt(ps_decode(buf, n + 1, &out, why, sizeof why), 0);     /* trailing octets */
	buf[3] = (char)(PS_ITEMS_MAX + 1);
	ck_assert_int_lt(ps_decode(buf, n, &out, why, sizeof why), 0);         /* too many items */
	buf[3] = 2;
	buf[0] = 'R';                                                           /* the old argv format */
	ck_assert_int_lt(ps_decode(buf, n, &out, why, sizeof why), 0);
	/* what cannot be encoded is not sent */
	in.n = PS_ITEMS_MAX + 1;
	ck_assert_uint_eq(ps_encode(&in, buf, sizeof buf), 0);
}
END_TEST

/* ---- run_dir ---- */

START_TEST(test_rundir_check)
{
	char why[300], path[4096];
	char *dir = unit_tmpdir();

	free(cf.run_dir);
	cf.run_dir = dir;
	ck_assert_int_eq(chmod(dir, 02750), 0);
	ck_assert_int_eq(rd_check(&cf, why, sizeof why), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);      /* the 0755 that let any local user in */
	ck_assert_int_lt(rd_check(&cf, why, sizeof why), 0);
	ck_assert_ptr_nonnull(strstr(why, "open to others (mode 0755"));
	ck_assert_int_eq(chmod(dir, 0701), 0);
	ck_assert_int_lt(rd_check(&cf, why, sizeof why), 0);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(rd_check(&cf, why, sizeof why), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(dir, 65534, (gid_t)-1), 0);
		ck_assert_int_lt(rd_check(&cf, why, sizeof why), 0);
		ck_assert_ptr_nonnull(strstr(why, "owned by uid 65534"));
		ck_assert_int_eq(chown(dir, 0, (gid_t)-1), 0);
	}
	/* a symlink to a good directory is not run_dir */
	snprintf(path, sizeof path, "%s/link", dir);
	ck_assert_int_eq(symlink(dir, path), 0);
	cf.run_dir = path;
	ck_assert_int_lt(rd_check(&cf, why, sizeof why), 0);
	unlink(path);
	snprintf(path, sizeof path, "%s/missing", dir);
	ck_assert_int_lt(rd_check(&cf, why, sizeof why), 0);
	cf.run_dir = dir;
	/* one path helper: no '/', no empty name, no overflow */
	ck_assert_int_eq(rd_path(&cf, "a.example", path, sizeof path), 0);
	ck_assert_int_lt(rd_path(&cf, "../x", path, sizeof path), 0);
	ck_assert_int_lt(rd_path(&cf, "", path, sizeof path), 0);
	ck_assert_int_lt(rd_path(&cf, "a.example", path, strlen(dir) + 5), 0);
	unit_rmtree(dir);
}
END_TEST

START_TEST(test_rundir_socket_mode_and_group)
{
	char why[300], path[4096];
	char *dir = unit_tmpdir();
	struct stat st;
	gid_t other = getegid() == 0 ? 65534 : 0;

	free(cf.run_dir);
	cf.run_dir = dir;
	umask(022);
	int fd = rd_bind(&cf, "a.example");
	ck_assert_int_ge(fd, 0);
	snprintf(path, sizeof path, "%s/a.example", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);   /* never world-writable, whatever the umask */
	rd_unbind(&cf, "a.example", fd);
	ck_assert_int_lt(stat(path, &st), 0);
	/* the MTA's group must be what sockets get: set-group-ID run_dir of its group, or ours */
	ck_assert_int_eq(rd_check_group(&cf, 0, other, why, sizeof why), 0);        /* root: always */
	ck_assert_int_eq(rd_check_group(&cf, 4242, getegid(), why, sizeof why), -1); /* mode 0700 */
	ck_assert_int_eq(chmod(dir, 0750), 0);
	ck_assert_int_eq(rd_check_group(&cf, 4242, getegid(), why, sizeof why), 0);
	ck_assert_int_eq(rd_check_group(&cf, 4242, other, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "could not reach its sockets"));
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(dir, 0, other), 0);
		ck_assert_int_eq(chmod(dir, 02750), 0);
		ck_assert_int_eq(rd_check_group(&cf, 4242, other, why, sizeof why), 0);
		fd = rd_bind(&cf, "a.example");
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_uint_eq(st.st_gid, other);    /* inherited from the set-group-ID run_dir */
		rd_unbind(&cf, "a.example", fd);
	}
	unit_rmtree(dir);
}
END_TEST

START_TEST(test_rundir_created_as_root)
{
	char *dir = unit_tmpdir(), path[4096];
	struct stat st;
	struct passwd *pf = getpwnam("postfix");
	gid_t pf_gid = pf ? pf->pw_gid : 0;

	if (geteuid() != 0 || pf == NULL) {
		unit_rmtree(dir);
		free(dir);
		return;  /* needs root and a postfix account (make check runs as root) */
	}
	snprintf(path, sizeof path, "%s/run", dir);
	free(cf.run_dir);
	cf.run_dir = path;
	cf.user = strdup("nobody");
	rd_create(&cf);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 02750);
	ck_assert_uint_eq(st.st_uid, getpwnam("nobody")->pw_uid);
	ck_assert_uint_eq(st.st_gid, pf_gid);
	/* an existing run_dir is left as it is */
	ck_assert_int_eq(chmod(path, 0700), 0);
	rd_create(&cf);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	rmdir(path);
	cf.run_dir = NULL;
	unit_rmtree(dir);
	free(dir);
}
END_TEST

Suite *mta_suite(void)
{
	Suite *s = suite_create("mta");
	TCase *tc = tcase_create("mta");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ours_exact_domain);
	tcase_add_test(tc, test_postqueue_j_recorded);
	tcase_add_test(tc, test_postqueue_j_other_domains);
	tcase_add_test(tc, test_postqueue_j_bad_line);
	tcase_add_test(tc, test_sendmail_bp_recorded);
	tcase_add_test(tc, test_sendmail_bp_reason);
	tcase_add_test(tc, test_sendmail_empty_queue);
	tcase_add_test(tc, test_sendmail_substring_id_left_out);
	tcase_add_test(tc, test_many_ids_indexed);
	tcase_add_test(tc, test_privsep_postfix_argv);
	tcase_add_test(tc, test_privsep_sendmail_argv);
	tcase_add_test(tc, test_privsep_refusals);
	tcase_add_test(tc, test_helper_lanes);
	tcase_add_test(tc, test_privsep_wire);
	tcase_add_test(tc, test_rundir_check);
	tcase_add_test(tc, test_rundir_socket_mode_and_group);
	tcase_add_test(tc, test_rundir_created_as_root);
	suite_add_tcase(s, tc);
	return s;
}
