#!/usr/bin/env python3
"""Turns a bench/run run directory into RESULTS.md, latency.png and (with --soak) soak.png.

    python3 bench/report.py --run-dir /tmp/crocante-bench.XXXXXX --out bench

Reads results.jsonl (one line per measured run), machine.txt, load.tsv, response-check.txt
and soak-rss.tsv from the run directory. Standard library only; plots with gnuplot.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
from collections import defaultdict

CONTENDER_NAMES = {
    "ceiling": "ceiling (nginx `return 200`)",
    "floor": "floor (C on libfcgi)",
    "peer": "peer (PHP-FPM)",
    "crocante": "**crocante-logout**",
    "floor-keep": "floor, kept connections (libfcgi honouring `fastcgi_keep_conn on`)",
    "crocante-keep": "**crocante-logout, `CROCANTE_KEEP_CONNECTIONS=on`**",
}
# The contenders that open cookies and revoke tokens.
REVOKING = ("peer", "crocante", "crocante-keep")
# Scenarios with no cookie, where the kept-connection targets are read.
KEEP_SCENARIOS = ("none", "steady", "keepalive-over", "crowd", "nginx4")
SCENARIO_NAMES = {
    "none": "no cookie",
    "fast": "valid cookie, fast backend",
    "https": "valid cookie, fast https backend (private CA, pooled TLS connections): crocante-logout only",
    "slow": "valid cookie, backend answers after 1 s",
    "refused": "valid cookie, backend refuses connections",
    "replay": "one cookie replayed on every request, backend answers after 1 s",
    "outage": "outage: distinct tokens at a steady rate, backend refusing, then up",
    "soak": "soak: valid cookie, backend answers after 1 s",
    "keepalive-over": "misconfiguration: upstream `keepalive` larger than the worker count (no cookie)",
    "crowd": "misconfiguration: many more wrk connections than workers (no cookie)",
    "steady": "no cookie at a steady rate, below saturation (`STEADY_RATE`)",
    "nginx4": "misconfiguration: 4 nginx worker processes (no cookie)",
}
# crocante-logout's counters in its final status JSON, summed over rounds (its gauges are not).
COUNTERS = (
    "accepted_requests", "kept_requests", "kept_connections_expired", "kept_connections_evicted", "logouts", "sessions_opened", "revocations_queued", "revocations_duplicate",
    "revocations_revoked", "revocations_rejected", "revocations_failed", "revocations_retried",
    "revocations_expired", "revocations_dropped", "revocations_lost", "revocations_handed_over",
    "revocations_adopted", "spool_corrupt_records", "spool_syncs", "spool_write_errors", "spool_full", "backend_latency_count", "backend_latency_sum_ms",
)
# Its gauges at the stop: the largest over rounds.
GAUGES = ("revocations_pending", "spool_pending_records", "spool_enabled", "spool_bytes")
# Records written before the final status JSON existed hold the `stopped` log line's fields.
LEGACY_NAMES = {
    "requests": "accepted_requests", "revoked": "revocations_revoked", "rejected": "revocations_rejected",
    "failed": "revocations_failed", "dropped": "revocations_dropped", "lost": "revocations_lost",
}


def totals(run):
    """crocante-logout's counters at the stop that ended this run; {} for the other contenders."""
    if "totals" in run:
        return {k: v for k, v in run["totals"].items() if k in COUNTERS + GAUGES}
    return {LEGACY_NAMES.get(k, k): v for k, v in run.get("stopped", {}).items()}


def from_stopped_line(runs):
    """True for results recorded from the `stopped` log line, before the final status JSON."""
    return any("stopped" in r and "totals" not in r for r in runs)


def load(run_dir):
    runs = []
    with open(os.path.join(run_dir, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    machine = {}
    with open(os.path.join(run_dir, "machine.txt")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            machine[key] = value
    return runs, machine


def aggregate(runs):
    """(scenario, contender) -> summary over its rounds."""
    groups = defaultdict(list)
    for run in runs:
        groups[(run["scenario"], run["contender"])].append(run)
    summary = {}
    for key, group in groups.items():
        wrks = [r["wrk"] for r in group if r["wrk"]]
        requests = sum(w.get("requests", 0) for w in wrks)
        seconds = sum(w.get("duration_us", 0) for w in wrks) / 1e6
        clk = group[0]["clk_tck"]
        cpu_s = sum(r["cpu_ticks"] for r in group) / clk
        nginx_cpu_s = sum(r["nginx_cpu_ticks"] for r in group) / clk
        backend_cpu_s = sum(r.get("backend_cpu_ticks", 0) for r in group) / clk
        counted = defaultdict(int)
        has_totals = False
        for r in group:
            for k, v in totals(r).items():
                counted[k] = max(counted[k], v) if k in GAUGES else counted[k] + v
                has_totals = True
        curves = defaultdict(list)
        for w in wrks:
            for p, us in w.get("curve", []):
                curves[p].append(us)
        summary[key] = {
            "rounds": len(group),
            "requests": requests,
            "rps": requests / seconds if seconds else 0.0,
            "rps_rounds": [w["requests"] / (w["duration_us"] / 1e6) for w in wrks if w.get("duration_us")],
            "p50_ms": statistics.mean(w["p50_us"] for w in wrks) / 1000 if wrks else 0,
            "p99_ms": statistics.mean(w["p99_us"] for w in wrks) / 1000 if wrks else 0,
            "max_ms": max(w["lat_max_us"] for w in wrks) / 1000 if wrks else 0,
            "non2xx": sum(w["status_errors"] for w in wrks),
            "socket_errors": sum(w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"] for w in wrks),
            "timeouts": sum(w["timeouts"] for w in wrks),
            "cpu_us_per_req": cpu_s / requests * 1e6 if requests else float("nan"),
            "nginx_cpu_us_per_req": nginx_cpu_s / requests * 1e6 if requests else float("nan"),
            "backend_cpu_us_per_req": backend_cpu_s / requests * 1e6 if requests else float("nan"),
            "hwm_kb": max(r["hwm_kb"] for r in group),
            "delivered": sum(r["delivered"] for r in group),
            "distinct_delivered": sum(r.get("distinct_delivered", 0) for r in group),
            "distinct_sent": sum(w["distinct_cookies"] for w in wrks) if all("distinct_cookies" in w for w in wrks) else None,
            "seconds": seconds,
            "io_write_bytes": sum(r["io_write_bytes"] for r in group) if all("io_write_bytes" in r for r in group) else None,
            "spool_bytes_live": max((r["spool_bytes_live"] for r in group if r.get("spool_bytes_live") is not None), default=None),
            "spool_fs": next((r["spool_fs"] for r in group if r.get("spool_fs")), ""),
            "delivery_wait_s": max(r.get("delivery_wait_s", 0) for r in group),
            "nginx_upstream_errors": (sum(r["nginx_upstream_errors"] for r in group)
                                      if all("nginx_upstream_errors" in r for r in group) else None),
            "totals": dict(counted) if has_totals else None,
            "curve": sorted((p, statistics.mean(v) / 1000) for p, v in curves.items()),
        }
    return summary


def fmt(value, digits=0):
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return a / b if b else float("nan")


def render(runs, machine, summary, run_dir, out):
    """Writes out/RESULTS.md, one section after the other; returns the soak RSS samples for the plot."""
    scenarios = machine.get("scenarios", "").split()
    if machine.get("steady_rate"):
        SCENARIO_NAMES["steady"] = f"no cookie at a steady {int(machine['steady_rate']):,} requests/s, below saturation"
    soak_rows = read_soak_rows(run_dir)
    crocante = {sc: summary.get((sc, "crocante")) for sc in scenarios + ["soak"]}
    soak = soak_verdict(crocante.get("soak"), soak_rows)
    legacy = from_stopped_line(runs)
    lines = header_section(machine, run_dir) + parameters_section(machine, legacy) + response_check_section(run_dir)
    lines += columns_note(legacy)
    for scenario in scenarios:
        lines += scenario_table(scenario, machine.get("contenders", "").split(), summary)
    lines += revocation_section(machine, scenarios, crocante)
    lines += kept_section(machine, scenarios, summary)
    lines += outage_section(machine, runs)
    lines += targets_table(target_rows(summary, crocante, soak, machine, runs) + keep_target_rows(summary, scenarios))
    lines += soak_section(machine, crocante.get("soak"), soak)
    lines += latency_section() + every_run_table(runs)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return soak_rows


def busy_runs(run_dir):
    """(measured runs that started while other builds or tests ran, measured runs) from load.tsv."""
    busy, total = 0, 0
    load_path = os.path.join(run_dir, "load.tsv")
    if os.path.exists(load_path):
        with open(load_path) as f:
            for row in f:
                cols = row.rstrip("\n").split("\t")
                total += 1
                if len(cols) >= 5 and cols[4].strip() not in ("", "0"):
                    busy += 1
    return busy, total


def header_section(machine, run_dir):
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `bench/run` ({machine.get('started', '?')}, {int(machine.get('elapsed', '0')) // 60} min, "
        f"commit {machine.get('commit', '?')}). Raw data: `bench/results.jsonl` (one line per measured run).",
        "",
    ]
    busy, total = busy_runs(run_dir)
    if busy > 0:
        lines += [
            f"> **Provisional.** Other builds or test runs (swift-build / swift-frontend / xctest processes) were "
            f"running on this {machine.get('nproc')}-core machine at the start of {busy} of {total} "
            "measured runs; they compete with wrk, nginx and the contenders for the same cores. Ratios from "
            "adjacent runs are more trustworthy than absolute figures; rerun on an idle machine to confirm.",
            "",
        ]
    return lines


def log_level_note(level, legacy):
    """Why the responder runs at this level, and where the totals come from."""
    if legacy:
        return ("`notice` rather than the `warning` first asked for, because `warning` also hides the notice-level "
                "`stopped` line whose totals this report reads. Neither level writes a line per request in these "
                "scenarios (revoked = info; rejected = notice never happens, the stand-in answers 200); `error` lines "
                "(failed revocations, drops at most once a second) are written at both."
                if level == "notice" else f"at `{level}` the `stopped` totals may be missing from the log.")
    return ("at `notice` also one per revocation the backend rejects (never here: the stand-in answers 200); "
            "from `warning` up only `error` lines remain (failed revocations, drops at most once a second), "
            "no line per request in these scenarios. The totals come from the final status JSON it prints "
            "on stdout at its stop, whatever the level.")


def parameters_section(machine, legacy):
    level = machine.get("log_level", "notice")
    lines = [
        "## Machine and parameters",
        "",
        f"- CPU: {machine.get('cpu')}, `nproc` = {machine.get('nproc')}; memory {machine.get('memory')}",
        f"- Kernel: {machine.get('kernel')}; {machine.get('os')}",
        nginx_note(machine),
        f"- {machine.get('wrk')}; {machine.get('swift')}; libfcgi {machine.get('libfcgi')}; {machine.get('cc')}; "
        f"{machine.get('php')}",
        f"- Workers: **{machine.get('workers')}** for every FastCGI contender (crocante-logout `CROCANTE_WORKERS`, "
        "floor threads, PHP-FPM `pm = static` children)",
        f"- wrk: `-t{machine.get('threads')} -c{machine.get('connections')} -d{machine.get('duration')}s "
        f"--timeout {machine.get('wrk_timeout')}s --latency -s bench/post.lua` (POST, `Content-Length: 0`, the "
        f"Cookie header when the scenario has one), after a {machine.get('warmup')} s warm-up that is not measured; "
        f"{machine.get('rounds')} rounds, contenders alternating within each scenario (order reversed on even rounds); "
        "every contender is started fresh for each run",
        f"- crocante-logout runs with `APP_ENV=production`, **`CROCANTE_LOG_LEVEL={level}`**, default queue "
        "capacity (10000) and backend concurrency (16), "
        f"`CROCANTE_DRAIN_TIMEOUT_MS={machine.get('drain_ms')}` so that a stop is quick. At `info` it would log one "
        "line per revocation; " + log_level_note(level, legacy),
        "- Backend: `crocante-standin-backend` on loopback (`--delay-ms 1000` for the slow one); refusing = a "
        "loopback port nothing listens on.",
        cookie_note(machine),
        spool_note(machine),
    ]
    if machine.get("peer_note"):
        lines.append(f"- {machine['peer_note']}")
    return lines + [""]


def nginx_note(machine):
    if not machine.get("keepalive"):  # runs from before the kept-connection contenders
        return (f"- nginx {machine.get('nginx')} (`worker_processes auto`, `access_log off`, one nginx for all contenders, "
                "each on its own loopback port; upstreams on unix sockets in the run directory, `fastcgi_keep_conn off` "
                "as in `nginx.conf.example`)")
    return (f"- nginx {machine.get('nginx')} (`worker_processes {machine.get('nginx_processes')}`, `access_log off`, "
            "one nginx for all contenders, each on its own loopback port; upstreams on unix sockets in the run directory; "
            "every FastCGI site is `nginx.conf.example` with `fastcgi_next_upstream error timeout non_idempotent`). "
            "Closing contenders: `fastcgi_keep_conn off`, no upstream `keepalive`. Kept contenders (`-keep`): "
            f"`fastcgi_keep_conn on` and `keepalive {machine.get('keepalive')}` per nginx worker (all workers' idle "
            "connections together fit the responder's workers). Misconfigurations, each its own nginx: "
            f"`keepalive {machine.get('over_keepalive')}` (keepalive-over), 4 worker processes with `keepalive "
            f"{machine.get('keepalive')}` each (nginx4); crowd = wrk `-c{machine.get('crowd_connections')}` on the main nginx.")


def cookie_note(machine):
    pool = machine.get("pool")
    if not pool:
        return ("- Valid cookie = `crocante-logout seal --token T` with the run's `SESSION_SECRET`, the same for "
                "every request")
    return (f"- Valid cookie: **distinct tokens**, a pool of {int(pool):,} cookies sealed by `bench/seal-pool.py` "
            "(the origin's format, checked against crocante-logout and the peer before measuring); each wrk "
            f"thread cycles through its share, so a token repeats only after {int(pool):,} requests, and a repeat "
            "within crocante-logout's deduplication window (`CROCANTE_DEDUP_WINDOW`, 300 s) is counted `duplicate` "
            "and costs one table lookup instead of a queue entry and a spool record. The warm-up sends one fixed "
            "cookie. The replay scenario sends that one cookie on every request.")


def spool_note(machine):
    if machine.get("spool") != "1":
        return "- crocante-logout runs **memory-only** (`SPOOL=0`: no `CROCANTE_SPOOL_DIR`)."
    return (f"- crocante-logout runs **with a spool**: a fresh `CROCANTE_SPOOL_DIR` (mode 0700) for each run, under "
            f"`bench/.spool-*` in the repository's tree, file system `{machine.get('spool_fs') or '?'}` "
            "(not a tmpfs: `fdatasync` must reach a disk), default `CROCANTE_SPOOL_SYNC_MS` (50) and "
            "`CROCANTE_SPOOL_MAX_BYTES`; removed after each run, so no run adopts another's records.")


def response_check_section(run_dir):
    check_path = os.path.join(run_dir, "response-check.txt")
    if os.path.exists(check_path) and os.path.getsize(check_path) > 0:
        with open(check_path) as f:
            diff = f.read().rstrip()
        return [
            "**Response check failed**: not every contender answers the ceiling's bytes, or revokes the sealed token:",
            "",
            "```diff",
            diff,
            "```",
            "",
        ]
    return [
        "Response check: every contender answered the same status, headers and body as the ceiling "
        "(bar `Date`) before the measurements, and the PHP-FPM peer and crocante-logout both sent the sealed "
        "token to the backend (`Authorization: Bearer <token>`), also for the first cookie of the "
        "`bench/seal-pool.py` pool.",
        "",
    ]


def columns_note(legacy):
    return [
        "Columns: requests/s over all rounds; ×floor and ×ceiling are ratios to the floor and the ceiling in the "
        "same scenario of the same run; p50 and p99 are means over rounds, max the worst; socket errors = "
        "connect + read + write errors + timeouts; CPU = the contender's utime+stime (all its processes: nginx "
        "workers for the ceiling, master and children for PHP-FPM) during the measured window, per request; nginx and "
        "backend CPU likewise (the stand-in backend shares the same cores, so its cost lowers every figure in the "
        "fast-backend scenario); peak "
        "RSS = VmHWM (summed over processes); delivered = requests the stand-in backend recorded; revoked / failed "
        "/ dropped / lost from crocante-logout's "
        + ("`stopped` line" if legacy else "final status JSON (the last line on its stdout at a clean stop)")
        + " (summed over rounds).",
        "",
    ]


def scenario_table(scenario, contenders, summary):
    """One scenario: a row per contender, with its ratios to the floor and the ceiling of the same scenario."""
    floor = summary.get((scenario, "floor"))
    ceiling = summary.get((scenario, "ceiling"))
    lines = [
        f"### {SCENARIO_NAMES.get(scenario, scenario)}",
        "",
        "| contender | req/s | ×floor | ×ceiling | p50 ms | p99 ms | max ms | non-2xx | socket errors | CPU µs/req | nginx CPU µs/req | backend CPU µs/req | peak RSS MiB | delivered | revoked / failed / dropped / lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for contender in contenders:
        s = summary.get((scenario, contender))
        if not s:
            continue
        st = s["totals"]
        outcome = (f"{st.get('revocations_revoked', 0):,} / {st.get('revocations_failed', 0):,} / "
                   f"{st.get('revocations_dropped', 0):,} / {st.get('revocations_lost', 0):,}"
                   if st else "—")
        cpu = "—" if contender == "ceiling" else fmt(s["cpu_us_per_req"], 1)
        rss = "—" if contender == "ceiling" else fmt(s["hwm_kb"] / 1024, 1)
        delivered = fmt(s["delivered"]) if scenario not in KEEP_SCENARIOS and contender in REVOKING else "—"
        lines.append(
            f"| {CONTENDER_NAMES.get(contender, contender)} | {fmt(s['rps'])} | "
            f"{fmt(ratio(s['rps'], floor['rps']) if floor else None, 2)} | "
            f"{fmt(ratio(s['rps'], ceiling['rps']) if ceiling else None, 2)} | "
            f"{fmt(s['p50_ms'], 2)} | {fmt(s['p99_ms'], 2)} | {fmt(s['max_ms'], 1)} | {fmt(s['non2xx'])} | "
            f"{fmt(s['socket_errors'])}{' (' + fmt(s['timeouts']) + ' timeouts)' if s['timeouts'] else ''} | "
            f"{cpu} | {fmt(s['nginx_cpu_us_per_req'], 1)} | "
            f"{fmt(s['backend_cpu_us_per_req'], 1) if scenario in ('fast', 'https', 'slow') and contender in REVOKING else '—'} | "
            f"{rss} | {delivered} | {outcome} |")
    return lines + [""]


def read_soak_rows(run_dir):
    """(seconds, VmRSS kB) samples of the soak run, if there was one."""
    rows = []
    soak_path = os.path.join(run_dir, "soak-rss.tsv")
    if os.path.exists(soak_path):
        with open(soak_path) as f:
            for row in f:
                t, rss = row.split()
                rows.append((int(t) / 1000, int(rss)))
    return rows


def soak_verdict(soak, soak_rows):
    """(early, late, growth, totals) of the soak's RSS, or None without enough samples."""
    if not soak or len(soak_rows) < 20:
        return None
    early = statistics.median(r for t, r in soak_rows if 10 <= t < 20)
    late = statistics.median(r for t, r in soak_rows[-10:])
    return early, late, late / early, soak["totals"] or {}


def target_rows(summary, c, soak, machine, runs):
    """(target, measured, met or None) for crocante-logout against the floor, its no-cookie self and the peer."""
    base = c.get("none")
    targets = []
    spool = " (spool on)" if machine.get("spool") == "1" else " (memory-only)"
    if base:
        floor = summary.get(("none", "floor"))
        if floor:
            r = ratio(base["rps"], floor["rps"])
            targets.append(("no cookie: throughput ≥ the C floor", f"{fmt(base['rps'])} vs {fmt(floor['rps'])} req/s = {r:.2f}×", r >= 1.0))
        if c.get("fast"):
            r = ratio(c["fast"]["rps"], base["rps"])
            targets.append(("valid cookie, fast backend: throughput ≥ 0.9× no-cookie", f"{r:.2f}×", r >= 0.9))
        for sc in ("slow", "refused"):
            if c.get(sc):
                r = ratio(c[sc]["rps"], base["rps"])
                targets.append((f"{SCENARIO_NAMES[sc]}{spool}: throughput ≥ 0.9× no-cookie",
                                f"{fmt(c[sc]['rps'])} vs {fmt(base['rps'])} req/s = {r:.2f}×", r >= 0.9))
                r = ratio(c[sc]["p99_ms"], base["p99_ms"])
                targets.append((f"{SCENARIO_NAMES[sc]}{spool}: p99 ≤ 1.5× no-cookie", f"{fmt(c[sc]['p99_ms'], 2)} vs {fmt(base['p99_ms'], 2)} ms = {r:.2f}×", r <= 1.5))
        for sc in ("fast", "slow", "refused"):
            if c.get(sc):
                r = ratio(c[sc]["cpu_us_per_req"], base["cpu_us_per_req"])
                targets.append((f"{SCENARIO_NAMES[sc]}: responder CPU/request ≤ 1.5× no-cookie",
                                f"{fmt(c[sc]['cpu_us_per_req'], 1)} vs {fmt(base['cpu_us_per_req'], 1)} µs = {r:.2f}×", r <= 1.5))
    for sc in ("slow", "refused"):
        peer = summary.get((sc, "peer"))
        if c.get(sc) and peer:
            targets.append((f"{SCENARIO_NAMES[sc]}: vs the PHP-FPM peer",
                            f"{fmt(c[sc]['rps'])} vs {fmt(peer['rps'], 1)} req/s"
                            + (f" = {ratio(c[sc]['rps'], peer['rps']):,.0f}×" if peer["rps"] else " (the peer completed no request in time)"),
                            None))
    for sc in ("fast", "slow", "refused", "replay"):
        st = (c.get(sc) or {}).get("totals") or {}
        if st.get("spool_enabled"):
            io = c[sc]["io_write_bytes"]
            targets.append((f"{SCENARIO_NAMES[sc]}: spool cost (reported, no target)",
                            f"{fmt(ratio(st.get('spool_syncs', 0), c[sc]['seconds']), 1)} fsyncs/s, "
                            f"{fmt(ratio(io, c[sc]['requests']), 1) if io is not None else '—'} disk write bytes/logout",
                            None))
    outage = [r for r in runs if r["scenario"] == "outage" and r["contender"] == "crocante"]
    if outage:
        opened = sum(r.get("totals", {}).get("sessions_opened", 0) for r in outage)
        delivered = sum(r.get("distinct_delivered", 0) for r in outage)
        targets.append((f"outage{spool}: every token delivered once the backend is back (delivered = logouts)",
                        f"{delivered:,} distinct tokens delivered of {opened:,} logouts", delivered == opened and opened > 0))
    if soak:
        early, late, growth, st = soak
        targets.append(("soak: RSS flat with the slow backend (median of the last 10 s ≤ 1.1× that of 10–20 s)",
                        f"{early / 1024:.1f} → {late / 1024:.1f} MiB ({growth:.2f}×), dropped {st.get('revocations_dropped', 0):,}",
                        growth <= 1.1))
    return targets


def keep_target_rows(summary, scenarios):
    """(target, measured, met or None) for the kept-connection mode (issues 14 and 20), from one run's adjacent rows."""
    targets = []
    keep, floor, floor_keep = (summary.get(("none", k)) for k in ("crocante-keep", "floor", "floor-keep"))
    if keep and floor:
        r = ratio(keep["rps"], floor["rps"])
        targets.append(("no cookie, kept connections: throughput ≥ 1.4× the closing C floor",
                        f"{fmt(keep['rps'])} vs {fmt(floor['rps'])} req/s = {r:.2f}×", r >= 1.4))
        targets.append(("no cookie, kept connections: p99 ≤ the closing C floor's",
                        f"{fmt(keep['p99_ms'], 2)} vs {fmt(floor['p99_ms'], 2)} ms", keep["p99_ms"] <= floor["p99_ms"]))
    if keep and floor_keep:
        r = ratio(keep["rps"], floor_keep["rps"])
        targets.append(("no cookie: throughput ≥ 1.0× the C floor honouring keep-conn",
                        f"{fmt(keep['rps'])} vs {fmt(floor_keep['rps'])} req/s = {r:.2f}×", r >= 1.0))
    resent = [(sc, s["nginx_upstream_errors"]) for (sc, k), s in summary.items()
              if k == "crocante-keep" and s.get("nginx_upstream_errors") is not None]
    if resent:
        total = sum(n for _, n in resent)
        targets.append(("kept mode: no request sent twice by nginx, in any scenario",
                        f"{total:,} nginx upstream errors over {len(resent)} scenarios", total == 0))
    for sc in KEEP_SCENARIOS:
        if sc not in scenarios:
            continue
        keep, closing, fk = (summary.get((sc, k)) for k in ("crocante-keep", "crocante", "floor-keep"))
        if keep:
            bad = keep["timeouts"] + keep["non2xx"] + keep["socket_errors"]
            targets.append((f"{SCENARIO_NAMES[sc]}: kept mode has no timeouts, no non-2xx, no socket errors",
                            f"{keep['timeouts']:,} timeouts, {keep['non2xx']:,} non-2xx, {keep['socket_errors']:,} socket errors",
                            bad == 0))
        if keep and closing:
            r = ratio(keep["p99_ms"], closing["p99_ms"])
            targets.append((f"{SCENARIO_NAMES[sc]}: kept mode p99 ≤ 2× the closing mode's",
                            f"{fmt(keep['p99_ms'], 2)} vs {fmt(closing['p99_ms'], 2)} ms = {r:.2f}×", r <= 2.0))
            targets.append((f"{SCENARIO_NAMES[sc]}: CPU per request, kept vs closing (reported, no target)",
                            f"responder {fmt(keep['cpu_us_per_req'], 1)} vs {fmt(closing['cpu_us_per_req'], 1)} µs, "
                            f"nginx {fmt(keep['nginx_cpu_us_per_req'], 1)} vs {fmt(closing['nginx_cpu_us_per_req'], 1)} µs",
                            None))
        if keep and fk and sc != "none":
            targets.append((f"{SCENARIO_NAMES[sc]}: vs the naive kept C floor (reported)",
                            f"p99 {fmt(keep['p99_ms'], 2)} vs {fmt(fk['p99_ms'], 2)} ms, max {fmt(keep['max_ms'], 1)} vs "
                            f"{fmt(fk['max_ms'], 1)} ms, {fmt(keep['rps'])} vs {fmt(fk['rps'])} req/s", None))
    return targets


def kept_section(machine, scenarios, summary):
    """Per kept-connection run: how many requests reused a connection, and what nginx had to resend."""
    contenders = [k for k in ("floor-keep", "crocante-keep") if k in machine.get("contenders", "").split()]
    rows = []
    for sc in scenarios:
        # The closing contenders once, as the yardstick (they keep nothing, so nginx resends nothing).
        for contender in (["floor", "crocante"] if sc == "none" else []) + contenders:
            s = summary.get((sc, contender))
            if not s or s.get("nginx_upstream_errors") is None:
                continue
            st = s["totals"] or {}
            accepted = st.get("accepted_requests")
            kept = st.get("kept_requests")
            share = f"{100 * kept / accepted:.0f}%" if accepted and kept is not None and contender == "crocante-keep" else "—"
            closed = (f"{fmt(st.get('kept_connections_expired'))} / {fmt(st.get('kept_connections_evicted'))}"
                      if contender == "crocante-keep" else "—")
            errors = s["nginx_upstream_errors"]
            per_thousand = 1000 * errors / s["requests"] if s["requests"] else float("nan")
            rows.append(f"| {SCENARIO_NAMES.get(sc, sc)} | {CONTENDER_NAMES.get(contender, contender)} | {fmt(s['requests'])} | "
                        f"{share} | {closed} | {fmt(errors)} | {fmt(per_thousand, 1)} |")
    if not rows:
        return []
    return [
        "## Kept connections: reuse and what nginx sent again",
        "",
        "Summed over rounds. Served on a kept connection = crocante-logout's `kept_requests` over its "
        "`accepted_requests` (requests begun, warm-up included); closed idle / for room = "
        "`kept_connections_expired` / `kept_connections_evicted`; nginx upstream errors "
        "= lines nginx's error log gained about this contender's socket during the measured window, each a "
        "request it had sent on a connection the responder had closed (`writev() failed (32: Broken pipe)`) "
        "or closed unread (`recv() failed (104: Connection reset by peer)`), which "
        "`fastcgi_next_upstream ... non_idempotent` sends again on a new connection (so none reaches the "
        "client, but each waits twice).",
        "",
        "| scenario | contender | requests (wrk) | served on a kept connection | kept connections closed idle / for room | nginx upstream errors | per 1,000 requests |",
        "|---|---|---:|---:|---:|---:|---:|",
    ] + rows + [""]


def revocation_section(machine, scenarios, c):
    """crocante-logout's revocation counters and spool cost per scenario."""
    rows = [(sc, c[sc]) for sc in scenarios if c.get(sc) and c[sc]["totals"] is not None and sc not in KEEP_SCENARIOS[1:]]
    if not rows:
        return []
    lines = [
        "## Revocations and the spool (crocante-logout)",
        "",
        "Counters from the final status JSON, summed over rounds (they include the warm-up and the drain at the stop: "
        "the warm-up's one cookie is queued once and its repeats are counted duplicate); logouts = sessions opened; distinct sent = distinct cookies wrk handed to a connection; delivered = distinct "
        "pool tokens the stand-in backend recorded (the replay's one cookie is not a pool token: see its record growth "
        "in the scenario table); failed = failed attempts (each retry that fails counts again); fsyncs/s = "
        "`spool_syncs` over the measured seconds; disk write bytes/logout = the responder's `write_bytes` from "
        "`/proc/PID/io` during the measured window (page-granular: what the kernel must write back, the log file "
        "included) over wrk's requests; spool bytes = the spool's size just before the stop, from the status page "
        "(the largest over rounds; the final JSON's is taken after the spool is closed); backend ms = mean backend call latency.",
        "",
        "| scenario | spool | logouts | distinct sent | queued | duplicate | revoked | failed | retried | dropped | "
        "handed over | pending at stop (memory / spool) | lost | delivered | fsyncs/s | disk write bytes/logout | spool bytes before stop | backend ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc, s in rows:
        st = s["totals"]
        spool = (s["spool_fs"] or "on") if st.get("spool_enabled", 1 if s["spool_fs"] else 0) else "memory-only"
        syncs = st.get("spool_syncs")
        latency_count = st.get("backend_latency_count", 0)
        lines.append(
            f"| {sc} | {spool} | {fmt(st.get('sessions_opened'))} | {fmt(s['distinct_sent'])} | "
            f"{fmt(st.get('revocations_queued'))} | {fmt(st.get('revocations_duplicate'))} | "
            f"{fmt(st.get('revocations_revoked'))} | {fmt(st.get('revocations_failed'))} | "
            f"{fmt(st.get('revocations_retried'))} | {fmt(st.get('revocations_dropped'))} | "
            f"{fmt(st.get('revocations_handed_over'))} | {fmt(st.get('revocations_pending'))} / "
            f"{fmt(st.get('spool_pending_records'))} | "
            f"{fmt(st.get('revocations_lost'))} | {fmt(s['distinct_delivered']) if sc != 'replay' else '—'} | "
            f"{fmt(ratio(syncs, s['seconds']), 1) if syncs is not None else '—'} | "
            f"{fmt(ratio(s['io_write_bytes'], s['requests']), 1) if s['io_write_bytes'] is not None else '—'} | {fmt(s['spool_bytes_live'])} | "
            f"{fmt(ratio(st.get('backend_latency_sum_ms', 0), latency_count), 1) if latency_count else '—'} |")
    return lines + [""]


def outage_section(machine, runs):
    """Each outage run: what was sent, what the responder counted, what the backend recorded."""
    outage = [r for r in runs if r["scenario"] == "outage" and r["contender"] == "crocante"]
    if not outage:
        return []
    lines = [
        "## Outage",
        "",
        f"crocante-logout alone, distinct tokens at about {machine.get('outage_rate')} logouts/s "
        f"(wrk -c{machine.get('outage_connections')}, each connection waiting between requests) for "
        f"{machine.get('outage_duration')} s; nothing listens on the backend port for the first "
        f"{machine.get('outage_down')} s, then the stand-in backend starts on it. After the load the bench waits "
        f"(at most {machine.get('outage_wait')} s) until the backend has recorded every distinct token the responder "
        "queued and nothing is pending, then stops the responder. delivered = distinct tokens in the backend's record.",
        "",
        "| round | req/s | p99 ms | non-2xx | logouts | distinct sent | queued | failed | retried | dropped | lost | "
        "delivered | waited s | delivered = logouts |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in outage:
        w = r["wrk"] or {}
        st = r.get("totals") or {}
        rps = w["requests"] / (w["duration_us"] / 1e6) if w.get("duration_us") else float("nan")
        opened = st.get("sessions_opened")
        ok = opened is not None and opened > 0 and r.get("distinct_delivered") == opened
        lines.append(
            f"| {r['round']} | {fmt(rps)} | {fmt(w.get('p99_us', 0) / 1000, 2)} | {fmt(w.get('status_errors'))} | "
            f"{fmt(opened)} | {fmt(w.get('distinct_cookies'))} | {fmt(st.get('revocations_queued'))} | "
            f"{fmt(st.get('revocations_failed'))} | {fmt(st.get('revocations_retried'))} | "
            f"{fmt(st.get('revocations_dropped'))} | {fmt(st.get('revocations_lost'))} | "
            f"{fmt(r.get('distinct_delivered'))} | {fmt(r.get('delivery_wait_s'))} | {'yes' if ok else '**no**'} |")
    return lines + [""]


def targets_table(targets):
    if not targets:
        return []
    lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, measured, ok in targets:
        lines.append(f"| {name} | {measured} | {'—' if ok is None else ('yes' if ok else '**no**')} |")
    return lines + [""]


def soak_section(machine, s, soak):
    if not s:
        return []
    st = s["totals"] or {}
    lines = [
        "## Soak",
        "",
        f"crocante-logout alone, valid cookie, backend answering after 1 s, {machine.get('soak_duration')} s "
        f"(`bench/run --soak`): {fmt(s['rps'])} req/s, p99 {fmt(s['p99_ms'], 2)} ms, max {fmt(s['max_ms'], 1)} ms, "
        f"non-2xx {fmt(s['non2xx'])}, socket errors {fmt(s['socket_errors'])}, CPU {fmt(s['cpu_us_per_req'], 1)} µs/req, "
        f"peak RSS {s['hwm_kb'] / 1024:.1f} MiB; revocations queued {st.get('revocations_queued', 0):,}, revoked "
        f"{st.get('revocations_revoked', 0):,}, failed {st.get('revocations_failed', 0):,}, dropped "
        f"{st.get('revocations_dropped', 0):,}, lost at stop {st.get('revocations_lost', 0):,}; the backend recorded "
        f"{fmt(s['delivered'])}.",
    ]
    if soak:
        early, late, growth, _ = soak
        lines += [
            "",
            f"RSS (sampled every second, `soak.png`): median {early / 1024:.1f} MiB over 10–20 s, "
            f"{late / 1024:.1f} MiB over the last 10 s ({growth:.2f}×).",
        ]
    return lines + [""]


def latency_section():
    return [
        "## Latency",
        "",
        "![latency percentiles per scenario](latency.png)",
        "",
        "`latency.png`: wrk's latency percentiles (means over rounds) per scenario and contender, log-log.",
        "",
    ]


def every_run_table(runs):
    lines = [
        "## Every run",
        "",
        "| scenario | contender | round | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | CPU µs/req | peak RSS MiB | delivered |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        wr = r["wrk"]
        if not wr:
            continue
        rps = wr["requests"] / (wr["duration_us"] / 1e6)
        cpu = r["cpu_ticks"] / r["clk_tck"] / wr["requests"] * 1e6 if wr["requests"] else float("nan")
        lines.append(
            f"| {r['scenario']} | {r['contender']} | {r['round']} | {fmt(rps)} | {fmt(wr['p50_us'] / 1000, 2)} | "
            f"{fmt(wr['p99_us'] / 1000, 2)} | {fmt(wr['lat_max_us'] / 1000, 1)} | {fmt(wr['status_errors'])} | "
            f"{fmt(wr['connect_errors'] + wr['read_errors'] + wr['write_errors'] + wr['timeouts'])} | "
            f"{fmt(cpu, 1)} | {fmt(r['hwm_kb'] / 1024, 1)} | {fmt(r['delivered'])} |")
    return lines + [""]


def plot(summary, machine, run_dir, out, soak_rows):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("report.py: gnuplot not found, no plots")
        return
    contenders = machine.get("contenders", "").split()
    scenarios = machine.get("scenarios", "").split()
    data_dir = os.path.join(run_dir, "plot")
    os.makedirs(data_dir, exist_ok=True)
    script = []
    rows = max(1, (len(scenarios) + 1) // 2)
    if scenarios:
        script += [
            f"set terminal pngcairo size 1400,{500 * rows} noenhanced font 'sans,10'" if _has_cairo(gnuplot)
            else f"set terminal png size 1400,{500 * rows}",
            f"set output '{os.path.join(out, 'latency.png')}'",
            "set logscale xy",
            "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)",
            "set xlabel 'percentile'",
            "set ylabel 'latency (ms)'",
            "set grid",
            "set key top left opaque box",
            f"set multiplot layout {rows},2 title 'crocante-logout vs references: wrk -c{machine.get('connections')} "
            f"-d{machine.get('duration')}s x {machine.get('rounds')} rounds, {machine.get('workers')} workers, "
            f"{machine.get('nproc')} CPUs'",
        ]
        for scenario in scenarios:
            plots = []
            for contender in contenders:
                s = summary.get((scenario, contender))
                if not s or not s["curve"]:
                    continue
                path = os.path.join(data_dir, f"{scenario}-{contender}.dat")
                with open(path, "w") as f:
                    for p, ms in s["curve"]:
                        if p < 100:
                            f.write(f"{1 / (1 - p / 100):.6f} {max(ms, 0.001):.4f}\n")
                plots.append(f"'{path}' using 1:2 with linespoints title '{contender} ({s['rps']:,.0f} req/s)'")
            script.append(f"set title '{SCENARIO_NAMES.get(scenario, scenario)}'")
            script.append("plot " + ", ".join(plots) if plots else "plot 1 notitle")
        script.append("unset multiplot")
    if soak_rows:
        path = os.path.join(data_dir, "soak-rss.dat")
        with open(path, "w") as f:
            for t, kb in soak_rows:
                f.write(f"{t:.1f} {kb / 1024:.2f}\n")
        script += [
            "reset",
            "set terminal pngcairo size 900,500 noenhanced font 'sans,10'" if _has_cairo(gnuplot) else "set terminal png size 900,500",
            f"set output '{os.path.join(out, 'soak.png')}'",
            "set xlabel 'seconds'",
            "set ylabel 'VmRSS (MiB)'",
            "set yrange [0:*]",
            "set grid",
            "set title 'crocante-logout RSS, backend answering after 1 s'",
            f"plot '{path}' using 1:2 with lines title 'crocante-logout VmRSS'",
        ]
    with open(os.path.join(data_dir, "plot.gp"), "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run([gnuplot, os.path.join(data_dir, "plot.gp")], check=True)


def _has_cairo(gnuplot):
    result = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (result.stdout + result.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs, machine = load(args.run_dir)
    summary = aggregate(runs)
    soak_rows = render(runs, machine, summary, args.run_dir, args.out)
    plot(summary, machine, args.run_dir, args.out, soak_rows)


if __name__ == "__main__":
    main()
