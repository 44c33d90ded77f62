"""Writes deploy/grafana/croupier.json: a Grafana dashboard over Croupier's /metrics.

Run `python deploy/grafana/build_dashboard.py` after changing a metric name. Import the
JSON in Grafana (Dashboards -> Import) and pick the Prometheus data source that scrapes
every worker's admin port.
"""

from __future__ import annotations

import json
import pathlib

PANELS = [
    # (title, unit, [(expr, legend)])
    ("Connections by transport", "short", [("sum by (transport) (croupier_connections)", "{{transport}}")]),
    (
        "Players / waiting for resume",
        "short",
        [("sum(croupier_players)", "players"), ("sum(croupier_players_detached)", "detached")],
    ),
    ("Requests/s by type", "reqps", [("sum by (type) (rate(croupier_requests_total[1m]))", "{{type}}")]),
    ("Errors/s by code", "reqps", [("sum by (code) (rate(croupier_errors_total[1m]))", "{{code}}")]),
    (
        "Handler latency",
        "s",
        [
            ("histogram_quantile(0.5, sum by (le) (rate(croupier_handler_seconds_bucket[1m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(croupier_handler_seconds_bucket[1m])))", "p99"),
        ],
    ),
    ("Events pushed/s", "short", [("sum(rate(croupier_events_total[1m]))", "events/s")]),
    ("Server closes/s by code", "short", [("sum by (code) (rate(croupier_closes_total[1m]))", "{{code}}")]),
    ("Event-loop lag", "s", [("max by (instance) (croupier_loop_lag_seconds)", "{{instance}}")]),
    (
        "Garbage-collector pauses",
        "s",
        [
            (
                "max by (instance, generation) (croupier_gc_pause_max_seconds)",
                "longest gen {{generation}} {{instance}}",
            ),
            (
                "sum by (generation) (rate(croupier_gc_pause_seconds_sum[1m]))",
                "paused s/s gen {{generation}}",
            ),
        ],
    ),
    (
        "Rounds/s by game",
        "short",
        [("sum by (zone, game) (rate(croupier_rounds_total[1m]))", "{{zone}}/{{game}}")],
    ),
    (
        "Observed vs configured RTP",
        "percentunit",
        [
            (
                "sum by (zone, game) (croupier_won_total) / sum by (zone, game) (croupier_staked_total)",
                "observed {{zone}}/{{game}}",
            ),
            ("max by (zone, game) (croupier_rtp_configured)", "configured {{zone}}/{{game}}"),
        ],
    ),
    (
        "Money commit wait",
        "s",
        [
            ("histogram_quantile(0.5, sum by (le) (rate(croupier_commit_seconds_bucket[1m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(croupier_commit_seconds_bucket[1m])))", "p99"),
        ],
    ),
    (
        "Ledger queue and database",
        "short",
        [
            ("sum(croupier_ledger_queue)", "queued"),
            ("min(croupier_ledger_available)", "db available"),
            ("sum(rate(croupier_ledger_busy_total[1m]))", "busy/s"),
            ("sum(rate(croupier_ledger_failed_total[1m]))", "failed/s"),
        ],
    ),
    (
        "Cache (Redis)",
        "short",
        [
            ("min(croupier_cache_up)", "up"),
            ("sum(rate(croupier_cache_errors_total[1m]))", "errors/s"),
            ("sum(rate(croupier_cache_refused_total[1m]))", "refused while down/s"),
        ],
    ),
    (
        "Bus between workers",
        "short",
        [
            ("sum(rate(croupier_bus_casts_total[1m]))", "casts/s"),
            ("sum(rate(croupier_bus_calls_total[1m]))", "calls/s"),
            ("sum(rate(croupier_bus_dropped_total[1m]))", "dropped/s"),
            ("sum by (error) (rate(croupier_bus_errors_total[1m]))", "{{error}}/s"),
        ],
    ),
    (
        "Bus call latency (recent calls)",
        "s",
        [('max by (quantile) (croupier_bus_call_seconds{quantile="0.99"})', "p99 (worst worker)")],
    ),
    (
        "Rewards scheduler",
        "short",
        [
            ("sum(croupier_rewards_staged)", "progress staged, not written"),
            ("sum(rate(croupier_rewards_tick_failures_total[5m]))", "tick failures/s"),
            ("sum(croupier_pick_rounds_open)", "open pick rounds"),
            ("sum(increase(croupier_pick_auto_finished_total[1h]))", "pick rounds auto-finished (1 h)"),
        ],
    ),
    (
        "Back office",
        "short",
        [
            (
                "sum by (op, status) (increase(croupier_backoffice_operations_total[1h]))",
                "{{op}} {{status}} (1 h)",
            ),
            (
                "sum by (currency, direction) (increase(croupier_backoffice_adjusted_total[1h]))",
                "{{direction}} {{currency}} (1 h)",
            ),
        ],
    ),
    (
        "Invitations",
        "short",
        [
            ("sum(rate(croupier_invitations_total[5m]))", "sent/s"),
            ("sum by (outcome) (rate(croupier_invitation_answers_total[5m]))", "{{outcome}}/s"),
            ("sum(croupier_invitations_open)", "waiting for an answer"),
        ],
    ),
]


def build() -> dict[str, object]:
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"x": (i % 2) * 12, "y": (i // 2) * 8, "w": 12, "h": 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + j), "expr": expr, "legendFormat": legend}
                    for j, (expr, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "title": "Croupier",
        "uid": "croupier-overview",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = pathlib.Path(__file__).with_name("croupier.json")
    out.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {out}")
