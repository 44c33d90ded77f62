"""The admin HTTP app over a real socket: health, readiness, Prometheus metrics, stats."""

from __future__ import annotations

import asyncio
import gc
import json
import urllib.error
import urllib.request

from .client import WsClient
from .conftest import Running


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(metrics: str, name: str) -> float:
    """The value of one sample line `name value` (labels included in `name`)."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name!r} in metrics")


def test_health_and_metrics_agree_with_what_clients_did(server: Running):
    assert get(server.admin_url + "/healthz") == (200, "ok\n")
    assert get(server.admin_url + "/readyz") == (200, "ready\n")

    async def clients():
        a = await WsClient.connect(server.ws_url)
        await a.request("login", guest=True, zone="demo")
        await a.request("join_room", room="Lobby")
        for i in range(5):
            await a.request("public_message", room=1, text=str(i))
        bad = await a.request("join_room", room="Nowhere")
        assert bad["type"] == "error"
        status, text = get(server.admin_url + "/metrics")
        assert status == 200
        kind = "picows" if server.server.hub.config.server.transport == "picows" else "websockets"
        assert sample(text, f'croupier_connections{{transport="{kind}"}}') == 1
        assert sample(text, "croupier_players") == 1
        assert sample(text, 'croupier_requests_total{type="PublicMessage"}') == 5
        assert sample(text, 'croupier_errors_total{code="room_not_found"}') == 1
        assert sample(text, "croupier_events_total") >= 5
        assert sample(text, "croupier_handler_seconds_count") >= 8
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle  # garbage only the collector frees
        gc.collect()  # a full collection in this process (the server runs in a thread of it)
        status, text = get(server.admin_url + "/metrics")
        assert sample(text, 'croupier_gc_pause_seconds_count{generation="2"}') >= 1
        assert sample(text, 'croupier_gc_pause_max_seconds{generation="2"}') > 0
        assert sample(text, 'croupier_gc_collected_objects_total{generation="2"}') >= 1
        status, body = get(server.admin_url + "/stats")
        stats = json.loads(body)
        assert stats["players"] == 1 and stats["zones"]["demo"] == 1
        await a.close()

    asyncio.run(clients())


def test_readyz_reports_draining(server: Running):
    hub = server.server.hub
    server.loop.call_soon_threadsafe(hub.shutdown)
    for _ in range(50):
        status, body = get(server.admin_url + "/readyz")
        if status == 503:
            break
    assert (status, body) == (503, "draining\n")


def test_casino_metrics_follow_the_ledger(tmp_path):
    """Rounds, stakes and wins exported per game match what the spins replied."""
    import msgspec

    from gameserver.config import CasinoSection, CasinoZone, StoreSection

    from .conftest import running_server, server_config

    base = server_config()
    cfg = msgspec.structs.replace(
        base,
        store=StoreSection(url=f"sqlite:///{tmp_path}/m.db"),
        casino=CasinoSection(zones={"demo": CasinoZone(games={"fruit_slot": "96.5"}, starting_balance=1000)}),
    )
    with running_server(cfg) as srv:

        async def spins():
            a = await WsClient.connect(srv.ws_url)
            await a.request("login", guest=True, zone="demo")
            stake = win = 0
            for _ in range(20):
                r = await a.request("spin", game="fruit_slot")
                assert r["type"] == "ok", r
                stake += r["data"]["stake"]
                win += r["data"]["win"]
            await a.close()
            return stake, win

        stake, win = asyncio.run(spins())
        _, text = get(srv.admin_url + "/metrics")
        _, body = get(srv.admin_url + "/stats")
    commits = json.loads(body)["spin_commits_ms"]
    assert sum(commits.values()) == 20 and list(commits)[-1] == "inf"  # one per spin, by bucket
    labels = '{game="fruit_slot",zone="demo"}'
    assert sample(text, "croupier_rounds_total" + labels) == 20
    assert sample(text, "croupier_staked_total" + labels) == stake
    assert sample(text, "croupier_won_total" + labels) == win
    assert sample(text, "croupier_rtp_configured" + labels) == 0.965
    assert sample(text, "croupier_commit_seconds_count") >= 20
    assert sample(text, "croupier_ledger_available") == 1
    # the rewards service's (a casino zone has it): nothing staged, no pick round open
    assert sample(text, "croupier_rewards_staged") == 0
    assert sample(text, "croupier_pick_rounds_open") == 0
    assert sample(text, "croupier_pick_auto_finished_total") == 0
    assert sample(text, "croupier_rewards_tick_failures_total") == 0
