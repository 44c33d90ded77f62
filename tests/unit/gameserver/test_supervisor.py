"""The supervisor without processes: ring routing, least-loaded choice, metric merging."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from gameserver.acceptor import NO_ROUTE, Route
from gameserver.admin import ClusterCollector, _sum_into
from gameserver.config import ClusterSection, Config, NodeAddress
from gameserver.ring import user_key
from gameserver.supervisor import BUSY_GRACE, Supervisor, _cpu, lease_verdict


def supervisor(workers: int = 3, nodes: int = 1, node_index: int = 0) -> Supervisor:
    addrs = [NodeAddress(host=f"127.0.0.{i + 1}", ws_port=8800) for i in range(nodes)] if nodes > 1 else []
    return Supervisor(Config(cluster=ClusterSection(workers=workers, nodes=addrs, node_index=node_index)))


def test_the_ring_spans_every_worker_of_every_node() -> None:
    sup = supervisor(workers=2, nodes=3, node_index=1)
    assert sup.members == ("0.0", "0.1", "1.0", "1.1", "2.0", "2.1")
    assert [s.member for s in sup.slots] == ["1.0", "1.1"]
    route = Route(user=("demo", 42))
    assert sup.owner(route) == sup.ring.owner(user_key("demo", 42))
    assert sup.owner(Route(resume="2.1")) == "2.1"
    assert sup.owner(Route(resume="9.9")) is None  # not a member (old ring): no key
    assert sup.owner(NO_ROUTE) is None


def test_least_loaded_skips_missing_and_draining_workers() -> None:
    sup = supervisor(workers=3)
    loads = [5, 2, 9]
    for slot, load in zip(sup.slots, loads, strict=True):
        slot.current = SimpleNamespace(load=load, draining=False)  # type: ignore[assignment]
    assert sup._least_loaded() is sup.slots[1]
    sup.slots[1].current.draining = True  # type: ignore[union-attr]
    assert sup._least_loaded() is sup.slots[0]
    for slot in sup.slots:
        slot.current = None
    assert sup._least_loaded() is None


def test_ties_go_round_robin() -> None:
    sup = supervisor(workers=3)
    for slot in sup.slots:
        slot.current = SimpleNamespace(load=0, draining=False)  # type: ignore[assignment]
    picked = {sup._least_loaded().member for _ in range(6)}  # type: ignore[union-attr]
    assert picked == {"0.0", "0.1", "0.2"}


def _families(requests: float, players: float) -> list[Any]:
    return [
        [
            "croupier_requests",
            "counter",
            "Requests",
            [["croupier_requests_total", {"type": "Login"}, requests]],
        ],
        ["croupier_players", "gauge", "Players", [["croupier_players", {}, players]]],
    ]


def test_counters_sum_over_workers_and_retired_ones_gauges_get_a_worker_label() -> None:
    sup = SimpleNamespace(
        retired={("croupier_requests", "croupier_requests_total", (("type", "Login"),)): 100.0},
        live=lambda: [],
        slots=[],
        counters=dict.fromkeys(("restarts", "superseded", "handoffs", "redirects", "refused"), 0),
        acceptor=SimpleNamespace(accepted=9, dropped=1),
    )
    collector = ClusterCollector(sup)  # type: ignore[arg-type]
    collector.snapshots = [("0.0", _families(3, 1)), ("0.1", _families(4, 2))]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'croupier_requests_total{type="Login"} 107.0' in text
    assert 'croupier_players{worker="0.0"} 1.0' in text
    assert 'croupier_players{worker="0.1"} 2.0' in text
    assert "croupier_supervisor_restarts_total 0.0" in text
    assert "croupier_acceptor_accepted_total 9.0" in text and "croupier_acceptor_dropped_total 1.0" in text


def test_stats_sum_numbers_and_nested_counts() -> None:
    total: dict[str, Any] = {}
    _sum_into(total, {"players": 2, "zones": {"demo": 2}, "requests": {"Login": 2}})
    _sum_into(total, {"players": 3, "zones": {"demo": 1, "b": 1}, "requests": {"Spin": 5}})
    assert total == {"players": 5, "zones": {"demo": 3, "b": 1}, "requests": {"Login": 2, "Spin": 5}}


def test_lease_verdicts_spare_busy_workers_but_not_stopped_ones() -> None:
    hb, lease = 0.5, 5.0
    assert lease_verdict(0.3, False, hb, lease) == "extend"  # it answers
    assert lease_verdict(2.0, False, hb, lease) == "keep"  # silent: its lease runs out
    assert lease_verdict(5.5, False, hb, lease) == "supersede"  # stopped or stuck
    assert lease_verdict(5.5, True, hb, lease) == "extend"  # overloaded but running
    assert lease_verdict(BUSY_GRACE * lease + 1, True, hb, lease) == "supersede"  # a runaway loop


def test_cpu_reads_this_process() -> None:
    import os

    stat = _cpu(os.getpid())
    assert stat is not None and stat[0] in "RS" and stat[1] >= 0
    assert _cpu(2**22 + 7) is None  # no such process


def test_a_leaving_workers_moved_sessions_reach_the_acceptor_within_the_channel_limit() -> None:
    """30,000 moved sessions (a leaving worker gives away all it has): `moved_out` and
    `moved_in` go in messages the channel takes, and the supervisor routes every token."""
    import msgspec

    from gameserver.handoff import MAX_MESSAGE
    from gameserver.worker import TOKENS_PER_MESSAGE, routing_messages

    tokens = [f"1.0.{i:08d}{'x' * 30}" for i in range(30_000)]
    out = list(routing_messages("moved_out", "moved", [[t, "0.1"] for t in tokens]))
    inn = list(routing_messages("moved_in", "tokens", tokens))
    assert len(out) == len(inn) == -(-len(tokens) // TOKENS_PER_MESSAGE)
    assert max(len(msgspec.msgpack.encode(msg)) for msg in out + inn) < MAX_MESSAGE // 4
    sup = supervisor(workers=2)
    wp: Any = SimpleNamespace(last_seen=0.0, slot=SimpleNamespace(member="0.0"))
    for msg in out:
        sup._worker_message(wp, msg)
    assert {t: v[0] for t, v in sup.relocated.items()} == dict.fromkeys(tokens, "0.1")
    for msg in inn:  # ... and sessions given to this worker are routed to it
        sup._worker_message(wp, msg)
    assert {v[0] for v in sup.relocated.values()} == {"0.0"} and len(sup.relocated) == len(tokens)
    assert list(routing_messages("moved_in", "tokens", [])) == []
