"""The run's report: one JSON document, a markdown summary and (with matplotlib) a plot.

JSON (`report.json`) holds everything: parameters, totals per step with latency
percentiles, errors by kind, server and generator resources, the timeline (one row per
second) and each pass criterion with its value. `summary.md` is the human version.
`plot.png` shows connections, messages/s and latency percentiles over time; it needs
matplotlib, which the rest does not.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .scenario import PRESETS, message_for
from .stats import DELIVERY

if TYPE_CHECKING:
    from .runner import Run

MiB = 2**20
#: a run whose busiest generator process went above this (% of a core) is rejected
GENERATOR_CPU_LIMIT = 80.0


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    """The median of one timeline column over `rows` (None without rows)."""
    return _r(statistics.median(r.get(key, 0.0) for r in rows), 1) if rows else None


def hold_mean(rows: list[dict[str, Any]], key: str) -> float | None:
    """The mean of one timeline column over `rows`, skipping rows without it."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return _r(sum(values) / len(values), 1) if values else None


def _step_types(run: Run) -> dict[str, str]:
    types: dict[str, str] = {
        "connect": "(tcp + upgrade)",
        "resume": "resume",
        DELIVERY: "(public_message, sent to each member)",
    }
    for p in run.sc.profiles:
        for s in p.steps:
            if s.op == "login":
                types[s.name] = "login"
            elif s.op in PRESETS or s.op == "request":
                types[s.name] = message_for(s)[0]
            else:
                types.setdefault(s.name, s.op)
    return types


def _resource_summary(run: Run, held: int) -> dict[str, Any]:
    tl = run.timeline
    hold = [r for r in tl if r["phase"] in ("settle", "hold")] or tl
    running = [r for r in tl if r["phase"] in ("ramp", "settle", "hold")] or tl
    base = run.baseline
    base_servers = [x for x in base.get("servers", []) if x is not None]
    base_rss = sum(x["rss"] for x in base_servers)
    base_fds = sum(x["fds"] for x in base_servers)
    base_workers = [x for x in base.get("workers", []) if x is not None]
    base_wrss = sum(x["rss"] for x in base_workers)
    last_hold = hold[-1] if hold else {}
    server: dict[str, Any] = {"processes": len(run.fleet.servers) if run.fleet else 0}
    if run.fleet is not None and tl:
        rss_hold = float(last_hold.get("server_rss", 0.0))
        server.update(
            {
                "pids": [s.pid for s in run.fleet.servers],
                "rss_baseline_mib": _r(base_rss / MiB, 1),
                "rss_at_hold_end_mib": _r(rss_hold / MiB, 1),
                "rss_peak_mib": _r(max(r["server_rss"] for r in tl) / MiB, 1),
                "rss_per_session_kib": _r((rss_hold - base_rss) / 1024 / held, 2) if held else None,
                "cpu_mean_percent": _r(sum(r["server_cpu"] for r in hold) / len(hold), 1),
                "cpu_max_percent": _r(max(r["server_cpu"] for r in tl), 1),
                # ms per second each server was ready to run but waited for a CPU
                "runqueue_wait_ms_per_s": hold_mean(hold, "server_wait"),
                "fds_baseline": int(base_fds),
                "fds_peak": int(max(r["server_fds"] for r in tl)),
                "fds_after": int(tl[-1]["server_fds"]) if tl[-1]["phase"] == "after" else None,
                # descriptors still open a few seconds after every client left (spec E3)
                "fds_left_after": int(tl[-1]["server_fds"] - base_fds)
                if tl[-1]["phase"] == "after"
                else None,
                "restarts": [s.restarts for s in run.fleet.servers],
                "per_process": _per_process(run),
            }
        )
    gen: dict[str, Any] = {"processes": len(run.workers)}
    if tl:
        wrss = float(last_hold.get("worker_rss", 0.0))
        gen.update(
            {
                "pids": [h.pid for h in run.workers],
                "source_addresses": run.source_ips,
                "cpu_mean_percent": _r(sum(r["worker_cpu"] for r in hold) / len(hold), 1),
                # the busiest generator process while sessions ran (not while closing)
                "cpu_max_percent_one_process": _r(max(r["worker_cpu_max"] for r in running), 1),
                "rss_at_hold_end_mib": _r(wrss / MiB, 1),
                "rss_per_session_kib": _r((wrss - base_wrss) / 1024 / held, 2) if held else None,
                "loop_lag_max_ms": _r(max(r["lag_ms"] for r in tl), 1),
                # each second's worst generator, typical of the hold: a round trip includes
                # the time its generator took to read the reply
                "loop_lag_hold_median_ms": median_of(hold, "lag_ms"),
                "gc_pause_max_ms": _r(max(r.get("gc_max_ms", 0.0) for r in tl), 1),
                # ms per second each generator was ready to run but waited for a CPU: a
                # reply that arrives then is read late, and the wait counts in its latency
                "runqueue_wait_ms_per_s": hold_mean(hold, "worker_wait"),
            }
        )
    machine = {
        "cpus": os.cpu_count(),
        "cpu_mean_percent": _r(sum(r["machine_cpu"] for r in hold) / len(hold), 1) if hold else None,
        "cpu_max_percent": _r(max(r["machine_cpu"] for r in tl), 1) if tl else None,
        # everything but the servers and generators (incl. the parent), in % of one core
        "other_cpu_mean_percent": _r(sum(r.get("other_cpu", 0.0) for r in hold) / len(hold), 1)
        if hold
        else None,
        # of which no process is charged for: interrupts and softirqs, and stolen time
        "irq_cpu_mean_percent": _r(sum(r.get("irq_cpu", 0.0) for r in hold) / len(hold), 1) if hold else None,
        "steal_cpu_mean_percent": _r(sum(r.get("steal_cpu", 0.0) for r in hold) / len(hold), 1)
        if hold
        else None,
        "mem_available_min_mib": _r(min(r["mem_available"] for r in tl) / MiB, 0) if tl else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    return {"server": server, "generator": gen, "machine": machine}


def _wait_note(proc: dict[str, Any]) -> str:
    wait = proc.get("runqueue_wait_ms_per_s")
    if wait is None:
        return ""
    return f"; waiting for a CPU {wait} ms per second per process (hold mean)"


def _per_process(run: Run) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if run.fleet is None or not run.samples:
        return out
    for i, s in enumerate(run.fleet.servers):
        rows = [smp["servers"][i] for smp in run.samples if i < len(smp["servers"]) and smp["servers"][i]]
        if not rows:
            continue
        out.append(
            {
                "index": i,
                "port": s.port,
                "rss_peak_mib": _r(max(r["rss"] for r in rows) / MiB, 1),
                "cpu_max_percent": _r(max(r["cpu"] for r in rows), 1),
                "fds_peak": int(max(r["fds"] for r in rows)),
            }
        )
    return out


def error_breakdown(totals: dict[str, Any]) -> dict[str, int]:
    """Every error by kind. Connect failures are in the generators' own error counts."""
    errs: dict[str, int] = {k: int(v) for k, v in totals["errors"].items()}
    for label, st in totals["steps"].items():
        if label == "connect":
            continue
        for code, n in st.get("codes", {}).items():
            errs[f"{label}_error_{code}"] = errs.get(f"{label}_error_{code}", 0) + int(n)
        if st["timeouts"]:
            errs[f"{label}_timeout"] = int(st["timeouts"])
    for code, n in totals.get("unmatched_codes", {}).items():
        errs[f"error_reply_without_request_{code}"] = int(n)
    return {k: v for k, v in sorted(errs.items()) if v}


def sessions_at_ramp_end(workers: list[Any], timeline: list[dict[str, Any]]) -> int:
    """Sessions logged in when each generator finished its ramp; if a ramp was cut short by
    its time limit, the most sessions the timeline had in the ramp (its generator never said)."""
    if all(h.ramped_at is not None for h in workers):
        return sum(int(h.ramped_sessions) for h in workers)
    return max((int(r["sessions"]) for r in timeline if r["phase"] == "ramp"), default=0)


def build(run: Run, started_wall: float) -> dict[str, Any]:
    from .runner import merge_finals

    finals = [h.final for h in run.workers if h.final is not None]
    totals = merge_finals(finals)
    o = run.o
    held = int(totals.get("held_at_stop", 0))
    ramp_s = (run.ramp_end - run.t0) if run.ramp_end else None
    hold_s = (run.hold_end - run.ramp_end) if run.hold_end and run.ramp_end else None
    types = _step_types(run)
    steps: dict[str, Any] = {}
    for label, st in sorted(totals["steps"].items()):
        hist = totals["hist"].get(label)
        entry = {"type": types.get(label, label), **st}
        entry["latency"] = hist.summary_ms() if hist is not None else {"count": 0}
        hh = totals["hold_hist"].get(label)
        entry["hold_latency"] = hh.summary_ms() if hh is not None else {"count": 0}
        if st.get("unsupported"):
            entry["status"] = "not supported by server"
        steps[label] = entry
    unsupported = [
        {"step": label, "type": e["type"], "answered_unsupported": e["unsupported"]}
        for label, e in steps.items()
        if e.get("unsupported")
    ]
    errors = error_breakdown(totals)
    for kind, n in run.harness_errors.items():
        errors[kind] = errors.get(kind, 0) + n
    handshakes = int(totals.get("handshakes", 0))
    ramp_sessions = sessions_at_ramp_end(run.workers, run.timeline)
    peak_sessions = max((r["sessions"] for r in run.timeline), default=0)
    report: dict[str, Any] = {
        "scenario": {"name": run.sc.name, "description": run.sc.description, "codec": run.sc.codec},
        "params": {
            "connections": o.connections,
            "duration_s": o.duration,
            "servers": len(run.fleet.servers) if run.fleet else 0,
            "targets": [
                f"ws://{h}:{p}{path}" for h, p, path in (run.fleet.targets if run.fleet else o.targets)
            ],
            "generators": len(run.workers),
            "source_base": o.source_base,
            "ramp_rate": o.ramp_rate if o.ramp_rate is not None else run.sc.ramp.rate,
            "allow_unsupported": o.allow_unsupported,
            "store": run.sc.server.store if run.fleet else None,
            "server_config": (run.sc.server.config or "config/croupier.toml") if run.fleet else None,
            "server_nice": run.sc.server.nice if run.fleet else None,
        },
        "started_at_unix": round(started_wall, 3),
        "timing": {
            "ramp_s": _r(ramp_s, 3) if ramp_s is not None else None,
            "hold_s": _r(hold_s, 3) if hold_s is not None else None,
        },
        "connections": {
            "target": o.connections,
            "handshakes": handshakes,
            "handshakes_per_s": _r(ramp_sessions / ramp_s, 1) if ramp_s else None,
            "peak_open": max((r["open"] for r in run.timeline), default=0),
            "peak_sessions": peak_sessions,
            "held_at_end": held,
            "held_fraction": _r(held / o.connections, 6) if o.connections else None,
        },
        "messages": {
            "requests_sent": int(totals.get("sent", 0)),
            "ok_received": int(totals["recv"].get("ok", 0)),
            "errors_received": int(totals["recv"].get("error", 0)),
            "events_received": int(totals["recv"].get("events", 0)),
            "replies_without_request": int(totals.get("unmatched", 0)),
            "events": dict(sorted(totals["events"].items())),
        },
        "steps": steps,
        "unsupported": unsupported,
        "counters": dict(sorted(totals["counters"].items())),
        "errors": {"total": sum(errors.values()), "by_kind": errors},
        "reconnect": {
            "reconnected": int(totals["counters"].get("reconnected", 0)),
            "resumed": int(steps.get("resume", {}).get("ok", 0)),
            "resume_failed": int(totals["counters"].get("resume_failed", 0)),
            "latency": totals["reconnect_hist"].summary_ms(),
        },
        "server_counts": server_counts(run, held, steps),
        "actions": run.actions_log,
        **_resource_summary(run, held),
        "notes": run.notes,
        "timeline": run.timeline,
    }
    report["criteria"] = evaluate(report, run)
    report["pass"] = all(c["pass"] for c in report["criteria"])
    return report


def server_counts(run: Run, held: int, steps: dict[str, Any]) -> dict[str, Any]:
    """The servers' own counts (GET /stats) next to the generators' (empty without them)."""
    hold = run.server_stats.get("hold_end")
    if not hold:
        return {}
    answered = [x for x in hold if x]
    out: dict[str, Any] = {"servers_answered": len(answered), "servers": len(hold)}
    if len(answered) < len(hold):
        run.notes.append(f"{len(hold) - len(answered)} server(s) did not answer /stats")
        return out
    requests: dict[str, int] = {}
    for x in answered:
        for k, v in (x.get("requests") or {}).items():
            requests[k] = requests.get(k, 0) + int(v)
    players = sum(int(x.get("players", 0)) for x in answered)
    out.update(
        {
            "players_at_hold_end": players,
            "connections_at_hold_end": sum(int(x.get("connections", 0)) for x in answered),
            "detached_at_hold_end": sum(int(x.get("detached", 0)) for x in answered),
            "held_by_generators": held,
            "players_diff": players - held,
            "requests": dict(sorted(requests.items())),
        }
    )
    commits = [x.get("spin_commits_ms") or {} for x in answered]
    if any(commits):
        out["spin_commits"] = commit_summary(commits)
    # counts survive only without restarts (a new process starts from zero)
    if not any(a.kind == "rolling_restart" for a in run.sc.actions) and "login" in steps:
        out["login_diff"] = requests.get("Login", 0) - int(steps["login"]["sent"])
    after = run.server_stats.get("after")
    if after and all(after):
        out["players_after"] = sum(int(x.get("players", 0)) for x in after if x)
        out["connections_after"] = sum(int(x.get("connections", 0)) for x in after if x)
    return out


def commit_summary(histograms: list[dict[str, int]]) -> dict[str, Any]:
    """The servers' spin commits (submit to durable, whole run) from their /stats buckets
    (upper bound in ms -> count): how many, how many slow, and on which servers."""

    def over(h: dict[str, int], ms: float) -> int:
        return sum(n for b, n in h.items() if b == "inf" or float(b) > ms)

    total: dict[str, int] = {}
    for h in histograms:
        for b, n in h.items():
            total[b] = total.get(b, 0) + int(n)
    return {
        "count": sum(total.values()),
        "over_100ms": over(total, 100),
        "over_250ms": over(total, 250),
        "over_1s": over(total, 1000),
        "over_100ms_by_server": [over(h, 100) for h in histograms],
        "buckets_ms": total,
    }


def lookup(report: dict[str, Any], path: str) -> Any:
    v: Any = report
    for part in path.split("."):
        if isinstance(v, dict) and part in v:
            v = v[part]
        else:
            return None
    return v


def evaluate(report: dict[str, Any], run: Run) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def check(
        metric: str, lo: float | None, hi: float | None, allow_missing: bool = False, why: str = ""
    ) -> None:
        value = lookup(report, metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            ok = allow_missing
            value = None
        else:
            ok = (lo is None or value >= lo) and (hi is None or value <= hi)
        entry: dict[str, Any] = {"metric": metric, "value": value, "pass": ok}
        if lo is not None:
            entry["min"] = lo
        if hi is not None:
            entry["max"] = hi
        if why:
            entry["why"] = why
        out.append(entry)

    check("errors.total", None, 0, why="built in: no errors")
    if not any(s.op == "close" for p in run.sc.profiles for s in p.steps):
        check("connections.held_fraction", 1.0, None, why="built in: every session held at the end")
    check(
        "generator.cpu_max_percent_one_process",
        None,
        GENERATOR_CPU_LIMIT,
        allow_missing=True,
        why="built in: a saturated generator measures itself, not the server",
    )
    if run.fleet is not None:
        check("server.fds_left_after", None, 0, why="built in: sockets closed once the clients left")
    if report["server_counts"]:
        why = "built in: the servers' own counts (/stats) agree"
        check("server_counts.players_diff", 0, 0, why=why)
        if "login_diff" in report["server_counts"]:
            check("server_counts.login_diff", 0, 0, why=why)
        check(
            "server_counts.players_after", None, 0, allow_missing=True, why="built in: no session left after"
        )
    unsupported = {u["step"] for u in report["unsupported"]}
    for c in run.sc.criteria:
        parts = c.metric.split(".")
        if len(parts) > 1 and parts[0] == "steps" and parts[1] in unsupported:
            out.append(
                {
                    "metric": c.metric,
                    "value": "not supported by server",
                    "pass": run.o.allow_unsupported,
                    "why": "no samples: the server does not support this step",
                    **({"min": c.min} if c.min is not None else {}),
                    **({"max": c.max} if c.max is not None else {}),
                }
            )
            continue
        check(c.metric, c.min, c.max, c.allow_missing)
    for u in report["unsupported"]:
        out.append(
            {
                "metric": f"steps.{u['step']}",
                "value": "not supported by server",
                "pass": run.o.allow_unsupported,
                "why": f"the server answered `{u['type']}` with unknown_message / not_supported",
            }
        )
    return out


# -- writing ------------------------------------------------------------------------------


def write(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.json", out / "summary.md"]
    files[0].write_text(json.dumps(report, indent=1) + "\n")
    files[1].write_text(markdown(report))
    png = plot(report, out / "plot.png")
    if png is not None:
        files.append(png)
    else:  # no matplotlib: do not leave an older run's plot next to this report
        (out / "plot.png").unlink(missing_ok=True)
    return files


def _ms(lat: dict[str, Any], key: str) -> str:
    v = lat.get(key)
    return f"{v:.2f}" if isinstance(v, (int, float)) else "-"


def markdown(r: dict[str, Any]) -> str:
    c = r["connections"]
    p = r["params"]
    lines = [
        f"# Load run: {r['scenario']['name']} — {'PASS' if r['pass'] else 'FAIL'}",
        "",
        r["scenario"]["description"] or "",
        "",
        f"- {p['connections']:,} sessions ({r['scenario']['codec']}), {p['generators']} generator process(es),"
        f" {p['servers'] or len(p['targets'])} server process(es)"
        + (f" (config {p['server_config']}, store {p['store']})" if p.get("store") else "")
        + (f" at niceness {p['server_nice']}" if p.get("server_nice") else "")
        + f", hold {r['timing']['hold_s']} s after a {r['timing']['ramp_s']} s ramp",
        f"- held at the end: **{c['held_at_end']:,}** of {c['target']:,}; peak sessions {c['peak_sessions']:,};"
        f" sessions opened per second during the ramp (connect + upgrade + login): {c['handshakes_per_s']}",
        f"- requests sent {r['messages']['requests_sent']:,}; ok {r['messages']['ok_received']:,};"
        f" error replies {r['messages']['errors_received']:,}; events {r['messages']['events_received']:,}",
        f"- errors: **{r['errors']['total']}**"
        + (f" ({r['errors']['by_kind']})" if r["errors"]["total"] else ""),
        "",
        "## Steps",
        "",
        "Latencies are client round trips (send to reply) over the whole run; `hold p99` counts only replies"
        " after the ramp.",
        "",
        "`declined`: an expected no (a resume refused after a restart); `lost`: in flight when the"
        " connection went.",
        "",
        "| step | type | sent | ok | errors | timeouts | declined | lost | unsupported | p50 ms | p99 ms"
        " | p99.9 ms | max ms | hold p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in r["steps"].items():
        if label == "resume" and not s["sent"]:
            continue  # nothing reconnected
        lat = s["latency"]
        unsup = f"**{s['unsupported']} (not supported by server)**" if s.get("unsupported") else "0"
        lines.append(
            f"| {label} | `{s['type']}` | {s['sent']:,} | {s['ok']:,} | {s['errors']:,} | {s['timeouts']:,}"
            f" | {s['declined']:,} | {s['lost']:,} | {unsup} | {_ms(lat, 'p50_ms')} | {_ms(lat, 'p99_ms')} | {_ms(lat, 'p999_ms')}"
            f" | {_ms(lat, 'max_ms')} | {_ms(s['hold_latency'], 'p99_ms')} |"
        )
    srv, gen, m = r["server"], r["generator"], r["machine"]
    lines += ["", "## Resources", ""]
    if srv.get("processes"):
        lines.append(
            f"- server: RSS {srv['rss_baseline_mib']} MiB before, {srv['rss_at_hold_end_mib']} MiB at the end of the hold"
            f" (**{srv['rss_per_session_kib']} KiB per session**), peak {srv['rss_peak_mib']} MiB;"
            f" CPU mean {srv['cpu_mean_percent']}% / max {srv['cpu_max_percent']}% (100% = one core);"
            f" fds {srv['fds_baseline']} → peak {srv['fds_peak']} → after {srv['fds_after']}"
            + _wait_note(srv)
        )
    else:
        lines.append("- server: external (--target), not sampled")
    if gen.get("cpu_mean_percent") is not None:
        lines.append(
            f"- generator: CPU mean {gen['cpu_mean_percent']}% (all processes), busiest process max"
            f" {gen['cpu_max_percent_one_process']}%; RSS {gen['rss_at_hold_end_mib']} MiB"
            f" ({gen['rss_per_session_kib']} KiB per session); loop lag max {gen['loop_lag_max_ms']} ms"
            f" (in the hold, median of each second's worst: {gen.get('loop_lag_hold_median_ms')} ms),"
            f" longest GC pause {gen['gc_pause_max_ms']} ms" + _wait_note(gen)
        )
    lines.append(
        f"- machine: {m['cpus']} CPUs, CPU mean {m['cpu_mean_percent']}% / max {m['cpu_max_percent']}% (100% = all);"
        f" other processes during the hold: {m['other_cpu_mean_percent']}% of a core (of which"
        f" interrupts and softirqs, mostly the kernel's loopback network work: {m.get('irq_cpu_mean_percent')}%;"
        f" stolen by the hypervisor: {m.get('steal_cpu_mean_percent')}%);"
        f" lowest MemAvailable {m['mem_available_min_mib']} MiB"
    )
    sc = r.get("server_counts") or {}
    if "players_at_hold_end" in sc:
        lines.append(
            f"- the servers' own counts (/stats): {sc['players_at_hold_end']:,} players at the end of the hold"
            f" (generators held {sc['held_by_generators']:,}); requests {sc['requests']}"
            + (
                f"; after the run {sc['players_after']} players, {sc['connections_after']} connections"
                if "players_after" in sc
                else ""
            )
        )
    cs = sc.get("spin_commits")
    if cs:
        lines.append(
            f"- the servers' spin commits (submit → durable, whole run): {cs['count']:,}; over 100 ms"
            f" {cs['over_100ms']:,} (by server {cs['over_100ms_by_server']}), over 250 ms"
            f" {cs['over_250ms']:,}, over 1 s {cs['over_1s']:,}"
        )
    rc = r["reconnect"]
    if rc["reconnected"] or r["actions"]:
        lines += [
            "",
            "## Reconnects",
            "",
            f"- reconnected {rc['reconnected']:,} (resumed {rc['resumed']:,}, resume failed → fresh login"
            f" {rc['resume_failed']:,}); time from drop to back: p50 {_ms(rc['latency'], 'p50_ms')} ms,"
            f" p99 {_ms(rc['latency'], 'p99_ms')} ms, max {_ms(rc['latency'], 'max_ms')} ms",
            f"- actions: {json.dumps(r['actions'])}",
        ]
    lines += ["", "## Criteria", "", "| metric | value | limit | result |", "|---|---|---|---|"]
    for c in r["criteria"]:
        limit = " ".join(
            x for x in (f">= {c['min']}" if "min" in c else "", f"<= {c['max']}" if "max" in c else "") if x
        )
        lines.append(f"| `{c['metric']}` | {c['value']} | {limit} | {'pass' if c['pass'] else '**FAIL**'} |")
    if r["unsupported"]:
        lines += ["", "## Not supported by server", ""]
        for u in r["unsupported"]:
            lines.append(
                f"- step `{u['step']}` (message `{u['type']}`): {u['answered_unsupported']} request(s) answered"
                " unknown_message/not_supported; counted neither as success nor as error"
            )
    if r["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    if r["counters"]:
        lines += ["", "## Counters", "", "```", json.dumps(r["counters"], indent=1), "```"]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """Connections, messages/s and latency percentiles over time; None without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    tl = report["timeline"]
    if not tl:
        return None
    t = [r["t"] for r in tl]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    ax = axes[0]
    ax.plot(t, [r["open"] for r in tl], label="open sockets")
    ax.plot(t, [r["sessions"] for r in tl], label="sessions")
    ax.set_ylabel("connections")
    ax.legend(loc="upper left")
    ax = axes[1]
    ax.plot(t, [r["out_per_s"] for r in tl], label="requests/s")
    ax.plot(t, [r["in_per_s"] for r in tl], label="messages in/s")
    ax.set_ylabel("messages/s")
    ax.legend(loc="upper left")
    ax = axes[2]
    seen = {k for r in tl for k in r["latency"]}
    preferred = [k for k in ("spin", "ping", "login", "chat") if k in seen]
    labels = (preferred + sorted(seen - set(preferred) - {"connect", "resume"}))[:4]
    for i, label in enumerate(labels):
        pts = [(r["t"], r["latency"][label]) for r in tl if label in r["latency"]]
        color = f"C{i}"
        ax.plot([x for x, _ in pts], [v["p50_ms"] for _, v in pts], color=color, label=f"{label} p50")
        ax.plot(
            [x for x, _ in pts],
            [v["p99_ms"] for _, v in pts],
            color=color,
            linestyle="--",
            label=f"{label} p99",
        )
    ax.set_ylabel("round trip ms")
    ax.set_yscale("log")
    if labels:
        ax.legend(loc="upper left", fontsize="small", ncol=2)
    ax = axes[3]
    ax.plot(t, [r["server_cpu"] for r in tl], label="server CPU %")
    ax.plot(t, [r["worker_cpu"] for r in tl], label="generator CPU %")
    ax.set_ylabel("CPU % (100 = 1 core)")
    ax2 = ax.twinx()
    ax2.plot(t, [r["server_rss"] / MiB for r in tl], color="black", label="server RSS MiB")
    ax2.set_ylabel("server RSS MiB")
    ax.legend(loc="upper left")
    ax.set_xlabel("seconds")
    spans: dict[str, list[float]] = {}
    for r in tl:
        spans.setdefault(r["phase"], [r["t"], r["t"]])[1] = r["t"]
    shades = {"ramp": "tab:blue", "settle": "tab:green", "closing": "tab:red"}
    for a in axes:
        a.grid(alpha=0.3)
        for phase, (lo, hi) in spans.items():
            if phase in shades:
                a.axvspan(lo - 0.5, hi + 0.5, color=shades[phase], alpha=0.06)
        for act in report.get("actions", []):
            a.axvline(act["at_s"], color="black", linestyle=":", alpha=0.6)
    for act in report.get("actions", []):
        axes[0].annotate(
            act["kind"], (act["at_s"], 0), textcoords="offset points", xytext=(3, 3), fontsize="small"
        )
    status = "PASS" if report["pass"] else "FAIL"
    fig.suptitle(f"{report['scenario']['name']}: {report['params']['connections']:,} sessions — {status}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
