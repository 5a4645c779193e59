#!/usr/bin/python3
"""report.py RESULTS_DIR - turn bench/run.sh's CSVs into PNG plots (gnuplot) and REPORT.md.

Every figure is the median over repetitions with [min, max] over repetitions. Ratios are taken
between medians. Missing parts are reported as "not run"."""
import csv
import glob
import os
import statistics
import subprocess
import sys

R = sys.argv[1]
out = []


def p(*lines):
    out.extend(lines)


def rows(name):
    path = os.path.join(R, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def mmm(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt(t, nd=2, unit=""):
    if t is None:
        return "n/a"
    return "%.*f%s [%.*f–%.*f]" % (nd, t[0], unit, nd, t[1], nd, t[2])


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return None
    return a[0] / b[0]


def rfmt(r, target=None, le=True):
    if r is None:
        return "n/a"
    s = "%.2fx" % r
    if target is not None:
        ok = r <= target if le else r >= target
        s += " (target %s %.2fx: %s)" % ("<=" if le else ">=", target,
                                         "met" if ok else "MISSED, %.1fx the target" % (r / target) if le
                                         else "MISSED, %.0f%% of the target" % (100 * r / target))
    return s


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=False, cwd=R)


def readfile(name, maxlines=None):
    path = os.path.join(R, name)
    if not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    return lines[:maxlines] if maxlines else lines


NAMES = {
    "postfix": "Postfix 3.7 smtpd + Cyrus SASL (sasldb), connect→235",
    "default": "odmrd as shipped (system plugin dir, mech_list CRAM-MD5)",
    "plug-cram": "odmrd, private plugin dir {crammd5,sasldb}, CRAM-MD5",
    "scram": "odmrd, system plugin dir, mech_list SCRAM-SHA-256 CRAM-MD5",
    "floor": "floor: static canned-reply program under the same xinetd service (bench/floor.c)",
    "saslfloor": "saslfloor: the floor + odmrd's auth.c (libsasl2, sasldb, same plugins; bench/saslfloor.c)",
    "baseline": "odmrd as of BENCH_BASELINE (before)",
    "privsep": "odmrd with user = nobody (privilege separation: root helper + unprivileged session)",
    "forkserver": "odmrd + forkserver.patch (own listener, SASL init once, fork per connection, no exec; not the inetd shape)",
}

# ------------------------------------------------------------------------------------------------
machine = readfile("machine.txt") or []
mode = next((l.split(":", 1)[1].strip() for l in machine if l.startswith("mode:")), "?")
elapsed = readfile("elapsed_s.txt")
elapsed2 = readfile("elapsed_s-rerun.txt")
p("# odmrd benchmark report", "",
  "Produced by `bench/run.sh` (`make bench`) in mode **%s**; benchmark time %s s%s." % (
      mode, elapsed[0] if elapsed else "?",
      " (+ %s s partial re-run, see below)" % elapsed2[0] if elapsed2 else ""),
  "Every figure: median over the repetitions, [min–max] over the repetitions. Ratios are between "
  "medians. Raw per-handshake / per-run CSVs are next to this file.", "",
  "## Machine", "", "```", *machine, "```", "")
runs = readfile("runs.txt")
if runs and len(runs) > 1:
    p("Runs that produced these results (a later partial run replaces the CSVs of its parts; "
      "its machine state is below):", "", "```", *runs, "```", "")
rerun = readfile("machine-rerun.txt")
if rerun:
    p("Machine state during the partial re-run:", "", "```", *rerun, "```", "")
variants = readfile("variants.txt")
if variants:
    p("Every odmrd row is the tree as committed, except the prototype (built from a copy):", "",
      "```", *variants, "```", "")

# ------------------------------------------------------------------------------------------------
hs = rows("hs_summary.csv")
cpu = rows("cpu_summary.csv")
p("## 1. Handshake latency (connect → ATRN reply / connect → 235)", "")
if not hs:
    p("not run", "")
else:
    p("Client: `bench/hsclient.c` (C, CRAM-MD5 via OpenSSL libcrypto HMAC-MD5). odmrd under a real "
      "`xinetd -dontfork` (private config, loopback high port, user = root, instances/per_source "
      "UNLIMITED, cps = 10000 1, libwrap = odmrd as shipped): connect → 220 → EHLO → AUTH CRAM-MD5 → "
      "235 → `ATRN b.example` → **450** (not the customer's domain: no MTA involved). Postfix: a "
      "private instance, smtpd with `smtpd_sasl_type = cyrus` on the same sasldb, timed connect → 235. "
      "QUIT and the wait for the server's close are not timed but are inside the sessions/s figures. "
      "**floor** is the same xinetd service spawning `bench/floor.c`, a static program answering the "
      "same dialogue with canned replies (no SASL, map, config or log): what the inetd shape costs "
      "before odmrd does any work, so odmrd's own share is odmrd minus floor. The forkserver "
      "prototype runs without xinetd (odmrd -L PORT). "
      "Sequential runs: %s handshakes per repetition for odmrd, 5x that for Postfix." % (
          next((r["n"] for r in hs if r["conc"] == "seq" and r["server"] != "postfix"), "?")), "")
    seq = {}
    for r in hs:
        if r["conc"] != "seq":
            continue
        seq.setdefault(r["server"], []).append(r)
    order = [s for s in NAMES if s in seq]
    pf50 = mmm([fnum(r["p50_ms"]) for r in seq.get("postfix", [])])
    p("| server | p50 ms | p90 ms | p99 ms | errors | p50 ratio vs Postfix (target <= 1.0x) |",
      "|---|---|---|---|---|---|")
    for s in order:
        v50 = mmm([fnum(r["p50_ms"]) for r in seq[s]])
        v90 = mmm([fnum(r["p90_ms"]) for r in seq[s]])
        v99 = mmm([fnum(r["p99_ms"]) for r in seq[s]])
        err = sum(int(r["err"]) for r in seq[s])
        p("| %s | %s | %s | %s | %d | %s |" % (NAMES.get(s, s), fmt(v50, 3), fmt(v90, 3), fmt(v99, 3), err,
                                            "—" if s == "postfix" else rfmt(ratio(v50, pf50), 1.0)))
    p("")
    fl50 = mmm([fnum(r["p50_ms"]) for r in seq.get("floor", [])])
    df50 = mmm([fnum(r["p50_ms"]) for r in seq.get("default", [])])
    if fl50 and df50 and pf50:
        p("Split of odmrd's p50 (medians): the inetd shape itself (floor) %.3f ms = %.2fx Postfix; "
          "odmrd's own work on top (as shipped minus floor) %.3f ms = %.2fx Postfix. Even with no work "
          "of its own, a program spawned per connection by xinetd would be %s the target." % (
              fl50[0], fl50[0] / pf50[0], df50[0] - fl50[0], (df50[0] - fl50[0]) / pf50[0],
              "within" if fl50[0] <= pf50[0] else "%.1fx" % (fl50[0] / pf50[0])), "")
    # CDF plot from the raw per-handshake files.
    series = []
    for s in [x for x in ["postfix", "default", "plug-cram", "floor", "forkserver"] if x in seq]:
        lat = []
        for f in sorted(glob.glob(os.path.join(R, "raw_hs_%s_cseq_r*.csv" % s))):
            for r in rows(os.path.basename(f)):
                v = fnum(r["latency_us"])
                if v is not None and v >= 0:
                    lat.append(v / 1000.0)
        if not lat:
            continue
        lat.sort()
        dat = os.path.join(R, "cdf_%s.dat" % s)
        with open(dat, "w") as f:
            n = len(lat)
            for i, v in enumerate(lat):
                f.write("%.4f %.5f\n" % (v, (i + 1) / n))
        series.append((s, dat))
    if series:
        plots = ", ".join("'%s' using 1:2 with lines lw 2 title '%s'" % (
            os.path.basename(d), "Postfix smtpd + Cyrus SASL" if s == "postfix" else "odmrd " + s) for s, d in series)
        gnuplot("""set terminal pngcairo size 900,560 noenhanced
set output 'latency_cdf.png'
set title 'Handshake latency CDF (all sequential repetitions pooled)'
set xlabel 'latency, ms (log scale)'
set ylabel 'fraction of handshakes'
set logscale x
set grid
set key bottom right
plot %s
""" % plots)
        p("![latency CDF](latency_cdf.png)", "")

    # Concurrency.
    p("### Sessions/second with 1, 8 and 32 parallel clients", "")
    conc = {}
    for r in hs:
        c = "1" if r["conc"] == "seq" else r["conc"]
        if r["conc"] == "1" and r["server"] != "postfix":
            continue
        if r["conc"] == "seq" and r["server"] == "postfix":
            continue
        conc.setdefault((r["server"], c), []).append(fnum(r["rate_per_s"]))
    servers = [s for s in ["postfix", "default", "plug-cram", "floor", "forkserver"] if (s, "8") in conc]
    if servers:
        p("| server | 1 client | 8 clients | 32 clients | ratio vs Postfix at 1 / 8 / 32 |", "|---|---|---|---|---|")
        for s in servers:
            cells = [fmt(mmm(conc.get((s, c), [])), 0) for c in ("1", "8", "32")]
            rr = " / ".join("%.2fx" % ratio(mmm(conc.get((s, c), [])), mmm(conc.get(("postfix", c), [])))
                            if mmm(conc.get((s, c), [])) and mmm(conc.get(("postfix", c), [])) else "n/a"
                            for c in ("1", "8", "32"))
            p("| %s | %s | %s | %s | %s |" % (NAMES.get(s, s), *cells, "—" if s == "postfix" else rr))
        p("", "odmrd's 1-client figure is from the sequential runs above; Postfix's from a separate "
          "1-client run. Sessions/s include QUIT and the server's close.", "")
        dat = os.path.join(R, "conc.dat")
        with open(dat, "w") as f:
            for c in ("1", "8", "32"):
                f.write(c + " " + " ".join("%.1f" % (mmm(conc.get((s, c), [0]))[0]) for s in servers) + "\n")
        plots = ", ".join("'conc.dat' using %d:xtic(1) title '%s'" % (i + 2, s) for i, s in enumerate(servers))
        gnuplot("""set terminal pngcairo size 1000,500 noenhanced
set output 'concurrency.png'
set key outside right top vertical
set title 'Handshake sessions per second (median of repetitions)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xlabel 'parallel clients'
set ylabel 'sessions/s'
set grid ytics
plot %s
""" % plots)
        p("![concurrency](concurrency.png)", "")

# ------------------------------------------------------------------------------------------------
p("## 5. CPU per session", "")
if not cpu:
    p("not run", "")
else:
    p("Method: the kernel's per-process accounting in `/proc/PID/stat`. xinetd waits for every odmrd "
      "it forks, so the growth of xinetd's `cutime+cstime` over a run of N sequential sessions, "
      "divided by N, is the CPU of one odmrd session (whole process: exec, dynamic linking, SASL, "
      "map, exit; user and system as the kernel splits them), and the growth of its `cminflt` the "
      "minor page faults of one session; xinetd's own `utime+stime` growth is the inetd overhead "
      "(accept, fork, logging). For Postfix: the sum of `utime+stime` of every live process of the "
      "private instance plus the master's `cutime+cstime` (smtpd processes that exited were reaped "
      "by master), before and after the run — smtpd, anvil, master, postlogd for the log lines. The "
      "counters are kept in ns and shown in ticks (1/CLK_TCK): one tick of reading error over the "
      "whole run. Ratios are taken per repetition (same time window), then median [min–max].", "",
      "| server | server CPU ms/session | user | sys | inetd CPU ms/session | total | minor faults/session | total vs floor | total vs Postfix |",
      "|---|---|---|---|---|---|---|---|---|")
    byserver = {}
    for r in cpu:
        byserver.setdefault(r["server"], []).append(r)

    def total(r):
        return fnum(r["server_cpu_ms_per_session"]) + fnum(r["inetd_cpu_ms_per_session"])

    def per_rep_ratio(s, ref):
        a = {r["rep"]: total(r) for r in byserver.get(s, [])}
        b = {r["rep"]: total(r) for r in byserver.get(ref, [])}
        return mmm([a[k] / b[k] for k in a if k in b and b[k] > 0])

    def rr(t, target=None):
        if t is None:
            return "n/a"
        s_ = "%.2fx [%.2f–%.2f]" % t
        if target is not None:
            s_ += " (target <= %.1fx: %s)" % (target, "met" if t[0] <= target else "MISSED")
        return s_
    for s_ in [x for x in NAMES if x in byserver]:
        rs = byserver[s_]
        a = mmm([fnum(r["server_cpu_ms_per_session"]) for r in rs])
        b = mmm([fnum(r["inetd_cpu_ms_per_session"]) for r in rs])
        t = mmm([total(r) for r in rs])
        u = mmm([fnum(r.get("server_user_ms")) for r in rs])
        y = mmm([fnum(r.get("server_sys_ms")) for r in rs])
        f = mmm([fnum(r.get("minflt_per_session")) for r in rs])
        p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            NAMES[s_], fmt(a, 3), fmt(u, 2) if u else "—", fmt(y, 2) if y else "—", fmt(b, 3), fmt(t, 3),
            fmt(f, 0) if f else "—", "—" if s_ in ("postfix", "floor") else rr(per_rep_ratio(s_, "floor")),
            "—" if s_ == "postfix" else rr(per_rep_ratio(s_, "postfix"))))
    p("")
    if "default" in byserver and "floor" in byserver and "postfix" in byserver:
        vf, vp = per_rep_ratio("default", "floor"), per_rep_ratio("default", "postfix")
        p("**Targets (issue 12 §1)**, odmrd as shipped, whole process with xinetd's share, per repetition:", "",
          "* odmrd <= 1.3x the floor: %s" % rr(vf, 1.3),
          "* odmrd <= 2.0x Postfix smtpd: %s" % rr(vp, 2.0))
        if "saslfloor" in byserver:
            sf, sp = per_rep_ratio("saslfloor", "floor"), per_rep_ratio("saslfloor", "postfix")
            d = mmm([total(r) for r in byserver["default"]])
            q = mmm([total(r) for r in byserver["saslfloor"]])
            fl = mmm([total(r) for r in byserver["floor"]])
            p("* the limit — saslfloor, which does nothing but odmrd's SASL (libsasl2, its plugins, "
              "two sasldb look-ups in Berkeley DB) in a process exec'd per connection: %s the floor, "
              "%s Postfix" % (rr(sf), rr(sp)),
              "* split of odmrd's total (medians): the inetd shape (floor) %.3f ms; libsasl2 and sasldb "
              "on top (saslfloor − floor) %.3f ms; odmrd's own work (odmrd − saslfloor: config, log, "
              "session, customer map, libgdbm/libjansson when used) %.3f ms" % (
                  fl[0], q[0] - fl[0], d[0] - q[0]))
        uc = readfile("unitcost.txt") or []
        cc = readfile("cpuid_count.txt") or []
        if uc:
            keys = {}
            for l in uc:
                for kv in l.split():
                    k, _, v = kv.partition("=")
                    keys.setdefault(k, []).append(fnum(v))
            p("* the kernel's and the hypervisor's unit costs on this machine (`bench/unitcost.c`, CPU "
              "µs per operation, median [min–max] of the repetitions): " + "; ".join(
                  "%s %s" % (k.replace("_us", ""), fmt(mmm(v), 2)) for k, v in keys.items()) +
              (". CPUID instructions from exec to exit: " + ", ".join(
                  l.replace("cpuid_count=", "") for l in cc) if cc else ""))
        if "baseline" in byserver:
            bt = mmm([total(r) for r in byserver["baseline"]])
            p("* before/after in this run: baseline %s ms → %s ms per session (%s the floor before)" % (
                fmt(bt, 3), fmt(mmm([total(r) for r in byserver["default"]]), 3),
                rr(per_rep_ratio("baseline", "floor"))))
        p("")

cg = rows("callgrind_summary.csv")
if cg:
    p("### Instructions per session (callgrind, one session, run directly on a socketpair)", "",
      "`hsclient -x -- valgrind --tool=callgrind PROGRAM -f CONF`: one handshake to the 450 reply, then "
      "QUIT; Ir counts everything from exec (ld.so) to exit, in user space (the kernel's work — exec, "
      "mappings, page faults, exit — is not in it: see the faults above and the system calls below). "
      "Deterministic: one run each.", "",
      "| configuration | Ir | vs odmrd as shipped |", "|---|---|---|")
    base = next((fnum(r["Ir"]) for r in cg if r["variant"] == "default"), None)
    for r in cg:
        ir = fnum(r["Ir"])
        p("| %s | %s | %s |" % (NAMES.get(r["variant"], r["variant"]), "{:,}".format(int(ir)) if ir else "n/a",
                               "%.2fx" % (ir / base) if ir and base else "n/a"))
    p("")
    # Phases of an odmrd session from the inclusive profile.
    inc = readfile("callgrind.default.inclusive.txt") or []

    def incl(fn):
        for l in inc:
            if (":%s [" % fn) in l:
                try:
                    return int(l.split()[0].replace(",", ""))
                except ValueError:
                    return None
        return None
    if base and inc:
        phases = [
            ("exec-time dynamic linking: ld.so relocating odmrd, libsasl2, libc", ["_dl_start"]),
            ("SASL set-up at the first EHLO: sasl_server_init opening the plugins (and Berkeley DB "
             "under sasldb), sasl_server_new, the mechanism list", ["auth_ready"]),
            ("AUTH CRAM-MD5: libsasl2 and two sasldb look-ups in Berkeley DB (with the lazy binding "
             "of the functions they call)", ["auth_start", "auth_step"]),
            ("customer map at ATRN: libgdbm opened, one look-up", ["dom_lookup"]),
            ("config file", ["cf_load"]),
            ("teardown: sasl_server_done, plugins closed", ["auth_close"]),
        ]
        p("Where odmrd's instructions go (inclusive Ir of each phase; the log lines are inside the "
          "phases that write them):", "", "| phase | Ir | share |", "|---|---|---|")
        used = 0
        for name, fns in phases:
            v = [incl(f) for f in fns]
            v = sum(x for x in v if x)
            if v:
                used += v
                p("| %s | {:,} | %.1f%% |".format(v) % (name, 100.0 * v / base))
        p("| the rest: session core, replies, logging outside those phases, exit | {:,} | %.1f%% |".format(
            int(base - used)) % (100.0 * (base - used) / base), "")
    obj = [l for l in (readfile("callgrind_by_object.default.csv") or []) if "," in l and l.split(",", 1)[1].startswith("/")]
    if obj:
        tot = base or sum(int(l.split(",")[0]) for l in obj if l)
        p("Ir by shared object, odmrd as shipped (exclusive cost; share of the program total):", "",
          "| object | Ir | share |", "|---|---|---|")
        for l in obj[:12]:
            ir, o = l.split(",", 1)
            p("| %s | {:,} | %.1f%% |".format(int(ir)) % (o, 100.0 * int(ir) / tot))
        p("")
    sc = rows("syscalls_summary.csv")
    if sc:
        p("System calls per session (`strace -f -c`, one session each): " + "; ".join(
            "%s %s (%s failed)" % (NAMES.get(r["variant"], r["variant"]).split(":")[0], r["calls"], r["errors"])
            for r in sc) + ". The complete trace of one odmrd session is `strace.default.trace.txt`.", "")
    ann = readfile("callgrind.default.annotate.txt")
    if ann:
        p("`callgrind_annotate` (odmrd as shipped), top of the exclusive profile:", "", "```")
        body = [l for l in ann if l.strip() and not l.startswith("--")]
        start = next((i for i, l in enumerate(body) if "PROGRAM TOTALS" in l), 0)
        p(*[l[:150] for l in body[start:start + 22]], "```", "")
    if inc:
        body = [l for l in inc if l.strip() and not l.startswith("--")]
        start = next((i for i, l in enumerate(body) if "PROGRAM TOTALS" in l), 0)
        keep = [l[:150] for l in body[start:start + 80] if any(k in l for k in (
            "PROGRAM TOTALS", ":main ", "sasl_server_init", "auth_ready", "auth_step", "auth_start", "_dl_start ",
            "dl_main", "dlopen@", "_dl_fixup", "sasl_server_done", "dom_lookup", "session_input", "cf_load",
            "sasl_server_new", "sasl_server_step", "sasl_listmech", "_sasldb_getdata"))]
        p("Inclusive cost of the main phases (odmrd as shipped):", "", "```", *keep[:25], "```", "")

# ------------------------------------------------------------------------------------------------
p("## 3. Memory", "")
mem = rows("mem_summary.csv")
if not mem:
    p("not run", "")
else:
    p("`/proc/PID/smaps_rollup` and `VmHWM` of the server processes while the sessions are held "
      "right after 235 (AUTH done, before ATRN/handoff). For N concurrent sessions the figures are "
      "summed over the N odmrd processes (children of xinetd) or over the smtpd processes of the "
      "Postfix instance, then divided by N. Target: <= 2 MiB private per odmrd session "
      "(private = Private_Clean + Private_Dirty; Private_Dirty alone shown too).", "",
      "| server | sessions | RSS KiB/session | PSS KiB/session | Private_Dirty KiB/session | "
      "Private (clean+dirty) KiB/session | VmHWM KiB/session |", "|---|---|---|---|---|---|---|")
    grp = {}
    for r in mem:
        grp.setdefault((r["server"], r["conc"]), []).append(r)
    for (s, c), rs in sorted(grp.items(), key=lambda k: (k[0][0] != "postfix", k[0][0], int(k[0][1]))):
        def per(field):
            return mmm([fnum(r[field]) / max(1, int(r["procs"])) for r in rs])
        priv = mmm([(fnum(r["private_clean_kb"]) + fnum(r["private_dirty_kb"])) / max(1, int(r["procs"])) for r in rs])
        procs = "/".join(sorted(set(r["procs"] for r in rs)))
        p("| %s | %s (procs %s) | %s | %s | %s | %s | %s |" % (
            NAMES.get(s, s), c, procs, fmt(per("rss_kb"), 0), fmt(per("pss_kb"), 0),
            fmt(per("private_dirty_kb"), 0), fmt(priv, 0), fmt(per("vmhwm_kb"), 0)))
    p("")
mr = rows("mem_relay.csv")
if mr:
    p("During the relay (the odmrd session of the throughput runs, sampled every 50 ms):", "",
      "| MTA, queue, customer | samples | max RSS KiB | max Private_Dirty KiB | VmHWM KiB |", "|---|---|---|---|---|")
    g = {}
    for r in mr:
        g.setdefault((r["mta"], r["size_label"], r["path"]), []).append(r)
    for k, rs in g.items():
        p("| %s | %s | %s | %s | %s |" % (", ".join(k), fmt(mmm([fnum(r["samples"]) for r in rs]), 0),
                                         fmt(mmm([fnum(r["max_rss_kb"]) for r in rs]), 0),
                                         fmt(mmm([fnum(r["max_private_dirty_kb"]) for r in rs]), 0),
                                         fmt(mmm([fnum(r["vmhwm_kb"]) for r in rs]), 0)))
    p("")

# ------------------------------------------------------------------------------------------------
p("## 4. Customer-map size", "")
mb = rows("map_build.csv")
ms = rows("map_summary.csv")
if not ms:
    p("not run", "")
else:
    p("Maps built with `odmrd-map` from generated text sources (`custNNNNNNN dNNNNNNN.example`, plus "
      "`alice a.example`); ATRN asks `b.example` → 450 after the lookup of alice's entry. odmrd with "
      "the private plugin dir {crammd5,sasldb} and mech_list CRAM-MD5 (the lowest baseline, so map "
      "cost is most visible). `lookup µs`: `bench/maplookup.c` calling odmrd's own `dom_lookup()` "
      "(gdbm_open+fetch+close) 2000 times on a warm page cache.", "",
      "| customers | build s | db size | dom_lookup µs | handshake p50 ms | p99 ms | ratio vs 10 customers (target <= 1.1x) |",
      "|---|---|---|---|---|---|---|")
    g = {}
    for r in ms:
        g.setdefault(int(r["customers"]), []).append(r)
    base = mmm([fnum(r["p50_ms"]) for r in g.get(10, [])])
    builds = {int(r["customers"]): r for r in mb}
    dat = os.path.join(R, "mapsize.dat")
    with open(dat, "w") as f:
        for n in sorted(g):
            v = mmm([fnum(r["p50_ms"]) for r in g[n]])
            v99 = mmm([fnum(r["p99_ms"]) for r in g[n]])
            b = builds.get(n, {})
            p("| %d | %s | %s | %s | %s | %s | %s |" % (
                n, "%.2f" % fnum(b["build_s"]) if b else "n/a",
                "%.1f MB" % (fnum(b["db_bytes"]) / 1e6) if b else "n/a",
                "%.1f" % fnum(b["lookup_us"]) if b else "n/a", fmt(v, 3), fmt(v99, 3),
                "—" if n == 10 else rfmt(ratio(v, base), 1.1)))
            f.write("%d %.4f %.4f %.4f\n" % (n, v[0], v[1], v[2]))
    p("")
    gnuplot("""set terminal pngcairo size 800,500 noenhanced
set output 'mapsize.png'
set title 'ATRN handshake latency vs customer-map size (median, min-max over repetitions)'
set logscale x
set xlabel 'customers in map (log scale)'
set ylabel 'p50 handshake latency, ms'
set yrange [0:*]
set grid
plot 'mapsize.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'odmrd (private plugin dir)'
""")
    p("![map size](mapsize.png)", "")

# ------------------------------------------------------------------------------------------------
p("## 2. Reversed-state throughput", "")
tp = rows("tp_summary.csv")
if not tp:
    p("not run", "")
else:
    p("Each MTA holds the queue for `a.example` (Postfix: a private instance, backoff 1 h so nothing "
      "moves unless flushed, messages injected over SMTP by `bench/inject.py`; Sendmail 8.17: the "
      "private instance of `tests/lib/sendmail.sh`, messages submitted with `sendmail -odq`). A run "
      "starts once all are queued and idle. Same queue, same C sink (`bench/sink.c`, discards data, "
      "records the time of every stored message). Paths:", "",
      "* **fetchmail**: real fetchmail (`protocol odmr`) → xinetd → odmrd → queue run (`postqueue -s` "
      "and `postqueue -i ID` / `sendmail -qf -qIID...`, two runs at once on disjoint IDs when the "
      "messages average at most 1 MiB) → MTA client on odmrd's per-domain socket → odmrd relay → "
      "fetchmail → sink; timed from fetchmail's start (connect, AUTH, ATRN, probe and flush inside).",
      "* **C customer**: the same, with `sink -C` as the customer: the sink itself logs in, sends "
      "ATRN and answers the reversed session, so the path holds only the MTA and odmrd. Timed from "
      "the customer's start.",
      "* **direct1**: Postfix's smtp client straight to the sink's TCP port, destination concurrency "
      "1 (one connection at a time, like ODMR), `postqueue -f`; Sendmail: `sendmail -qf "
      "-qR@a.example` with the sink listening on the domain's [IPC] socket (the same mailer odmrd "
      "uses, minus odmrd).",
      "* **directN**: Postfix with its default parallelism (up to 20 connections).", "",
      "Throughput = delivered / (last message stored − start). `steady` = (n−1) / (last − first stored). "
      "`odmrd CPU`: user+sys of the session's odmrd as reaped by xinetd (with Postfix that includes "
      "the tiny `postqueue -s`; with Sendmail it includes the `sendmail -qf` queue run odmrd starts, "
      "i.e. the MTA's own delivery work).", "",
      "| MTA | queue | path | msgs/s | steady msgs/s | session s | odmrd CPU ms/session | delivered |",
      "|---|---|---|---|---|---|---|---|")
    g = {}
    for r in tp:
        g.setdefault((r["mta"], r["size_label"], r["path"]), []).append(r)
    MTAS = ["postfix", "sendmail"]
    SIZES = ["small", "big"]
    PATHS = ["fetchmail", "customer", "customer-base", "direct1", "directN"]
    PNAME = {"fetchmail": "ODMR, fetchmail", "customer": "ODMR, C customer",
             "customer-base": "ODMR, C customer, baseline odmrd (BENCH_BASELINE)",
             "direct1": "direct, 1 connection", "directN": "direct, default concurrency"}
    med = {}

    def qlabel(k):
        return "%s x %s" % (g[k][0]["msgs"], "5 MB" if k[1] == "big" else "10 KiB")
    for k in sorted(g, key=lambda k: (MTAS.index(k[0]), SIZES.index(k[1]), PATHS.index(k[2]))):
        rs = g[k]
        t = mmm([fnum(r["msgs_per_s"]) for r in rs])
        st = mmm([fnum(r["steady_msgs_per_s"]) for r in rs])
        se = mmm([fnum(r["session_s"]) for r in rs])
        med[k] = (t, st)
        cpu = mmm([fnum(r.get("odmrd_cpu_ms")) for r in rs])
        p("| %s | %s | %s | %s | %s | %s | %s | %s |" % (k[0], qlabel(k), PNAME[k[2]], fmt(t, 1), fmt(st, 1), fmt(se, 2),
                                                        fmt(cpu, 0) if cpu else "—",
                                                        "/".join(sorted(set(r["delivered"] for r in rs)))))
    p("", "Ratios ODMR / direct with one connection, target >= 0.95x: the ratio of each repetition "
      "(the paths of one repetition run back to back), median [min–max] over repetitions; total, then "
      "steady:", "")

    def rep_ratios(mta, size, op, col):
        a = {r["rep"]: fnum(r[col]) for r in g.get((mta, size, op), [])}
        b = {r["rep"]: fnum(r[col]) for r in g.get((mta, size, "direct1"), [])}
        return mmm([a[k] / b[k] for k in a if k in b and a[k] is not None and b[k]])

    def rrfmt(t):
        if t is None:
            return "n/a"
        return "%.2fx [%.2f–%.2f] (target >= 0.95x: %s)" % (
            t[0], t[1], t[2], "met" if t[0] >= 0.95 else "MISSED, %.0f%% of the target" % (100 * t[0] / 0.95))
    for mta in MTAS:
        for size in SIZES:
            for op in ("fetchmail", "customer", "customer-base"):
                if (mta, size, op) in g and (mta, size, "direct1") in g:
                    p("* %s, %s, %s / direct1: %s; steady %s" % (
                        mta, qlabel((mta, size, op)), PNAME[op], rrfmt(rep_ratios(mta, size, op, "msgs_per_s")),
                        rrfmt(rep_ratios(mta, size, op, "steady_msgs_per_s"))))
    p("")
    with open(os.path.join(R, "tp.dat"), "w") as f:
        for mta in MTAS:
            for size in SIZES:
                vals = [med.get((mta, size, path)) for path in PATHS]
                if not any(vals):
                    continue
                f.write('"%s\\n%s" %s\n' % (mta, qlabel(next(k for k in g if k[:2] == (mta, size))).replace(" x ", "x"),
                                            " ".join("%.2f" % (v[0][0] if v else 0) for v in vals)))
    gnuplot("""set terminal pngcairo size 1200,560 noenhanced
set output 'throughput.png'
set bmargin 5
set key outside right top vertical
set title 'Held queue delivered: via ODMR vs the MTA directly (msgs/s, median; 0 = not run)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'messages/s (log scale)'
set logscale y
set yrange [0.1:*]
set grid ytics
plot 'tp.dat' using 2:xtic(1) title 'ODMR, fetchmail', '' using 3 title 'ODMR, C customer', '' using 4 title 'ODMR, C customer, baseline', '' using 5 title 'direct, 1 connection', '' using 6 title 'direct, default concurrency'
""")
    p("![throughput](throughput.png)", "")

# ------------------------------------------------------------------------------------------------
p("## TLS (issue 10)", "")
libs = readfile("tls-libs.md")
if libs:
    p("### The library choice (bench/tls/measure.sh)", "", *[l for l in libs if not l.startswith("# ")], "")
tcpu = rows("tls_cpu_summary.csv")
if not tcpu:
    p("part tls not run", "")
else:
    p("### CPU per session, STARTTLS + AUTH CRAM-MD5 (+ ATRN for odmrd), sequential, same client", "",
      "odmrd under xinetd (server CPU = the reaped odmrd processes), ECDSA P-256 chain, ticket keys from "
      "tls_ticket_key_file; Postfix smtpd with the same chain (`smtpd_tls_chain_files`), tickets via tlsmgr, "
      "CPU of the whole instance. *resumed*: each session offers the previous one's ticket. "
      "*Ed25519*: both servers with the same Ed25519 certificate instead, full handshakes. "
      "*default* is a plaintext odmrd session for reference (the plaintext cost must not grow with TLS). "
      "Median [min–max] of the repetitions; the ratio is against Postfix's full handshake with the same key type.", "",
      "| server | CPU ms per session | ratio vs Postfix STARTTLS+AUTH (full, same key type) |", "|---|---|---|")
    by = {}
    for r in tcpu:
        by.setdefault(r["server"], []).append(fnum(r["server_cpu_ms_per_session"]))
    pft = {"ec": mmm(by.get("postfix-tls", [])), "ed": mmm(by.get("postfix-tls-ed", []))}
    for name, label, key, target in [
            ("postfix-tls", "Postfix smtpd, STARTTLS + AUTH, full handshake", "ec", None),
            ("postfix-tls-resumed", "Postfix smtpd, STARTTLS + AUTH, resumed", "ec", None),
            ("tls", "odmrd as shipped, STARTTLS + AUTH + ATRN, full handshake", "ec", 2.0),
            ("tls-resumed", "odmrd as shipped, resumed", "ec", None),
            ("tls-plug", "odmrd, private plugin dir, full handshake", "ec", 2.0),
            ("tls-plug-resumed", "odmrd, private plugin dir, resumed", "ec", None),
            ("postfix-tls-ed", "Postfix smtpd, STARTTLS + AUTH, full handshake, Ed25519", "ed", None),
            ("tls-ed", "odmrd as shipped, STARTTLS + AUTH + ATRN, full handshake, Ed25519", "ed", 2.0),
            ("default", "odmrd as shipped, plaintext session (reference)", "ec", None)]:
        v = mmm(by.get(name, []))
        if v is None:
            continue
        p("| %s | %s | %s |" % (label, fmt(v, 2), "—" if name.startswith("postfix-tls") and name != "postfix-tls-resumed"
                                  else rfmt(ratio(v, pft[key]), target)))
    p("")
tcg = rows("tls_callgrind_summary.csv")
if tcg:
    p("### Instructions (callgrind)", "",
      "One odmrd process on a socketpair (`hsclient -x`), from exec to exit: a plaintext session on the "
      "TLS-enabled configuration (the module is never loaded), a full STARTTLS session, the next one "
      "resuming it, and a full STARTTLS session with an Ed25519 certificate (tls-ed-full). relay5m-*: instructions inside relay_step for one 5 MB message (bench/tls/relay5m).", "",
      "| run | Ir |", "|---|---|")
    for r in tcg:
        ir = fnum(r["Ir"])
        p("| %s | %s |" % (r["variant"], "{:,}".format(int(ir)) if ir else "n/a"))
    p("")
r5 = rows("tls_relay5m.csv")
if r5:
    p("### A 5 MB message in the reversed state (bench/tls/relay5m: odmrd's relay.c + conn.c)", "",
      "*tls-lines*: one TLS record per line, as odmrd sends to the customer (fetchmail --ssl stalls "
      "otherwise); *tls-blocks*: records as large as the writes, for comparison only.", "",
      "| mode | relay CPU ms | wall ms | MB/s |", "|---|---|---|---|")
    for m in ["plain", "tls-lines", "tls-blocks"]:
        c = mmm([fnum(r["relay_cpu_ms"]) for r in r5 if r["mode"] == m])
        w = mmm([fnum(r["wall_ms"]) for r in r5 if r["mode"] == m])
        if c:
            p("| %s | %s | %s | %.1f |" % (m, fmt(c, 1), fmt(w, 0), 5 * 1000.0 / w[0] if w and w[0] else 0))
    p("")

# The hand-written analysis (bench/analysis.md, if present) is appended after the figures.
analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
with open(os.path.join(R, "REPORT.md"), "w") as f:
    f.write("\n".join(out) + "\n")
    if os.path.exists(analysis):
        f.write("\n" + open(analysis).read())
print("wrote", os.path.join(R, "REPORT.md"))
