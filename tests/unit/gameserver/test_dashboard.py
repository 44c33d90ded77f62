"""The Grafana dashboard only queries metrics the server exports, and is up to date."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re

from gameserver.backoffice import BackOffice
from gameserver.hub import Hub
from gameserver.invitations import InvitationService
from gameserver.metrics import registry_for, render

from .fakes import make_hub

ROOT = pathlib.Path(__file__).resolve().parents[3]
DASH = ROOT / "deploy" / "grafana"


def test_dashboard_file_is_generated_from_the_script():
    spec = importlib.util.spec_from_file_location("build_dashboard", DASH / "build_dashboard.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert json.loads((DASH / "croupier.json").read_text()) == mod.build()


def test_every_queried_metric_exists():
    hub: Hub = make_hub()[0]
    hub.register(InvitationService(hub))  # services the server registers (gameserver/server.py)
    BackOffice.of(hub)
    types = re.findall(r"^# TYPE (\w+) ", render(registry_for(hub)).decode(), re.M)
    exported = {re.sub(r"_total$", "", name) for name in types}
    # casino and ledger metrics exist when a zone has a casino (tests/integration/test_admin.py)
    casino = {
        "croupier_rounds",
        "croupier_staked",
        "croupier_won",
        "croupier_rtp_configured",
        "croupier_commit_seconds",
        "croupier_ledger_queue",
        "croupier_ledger_available",
        "croupier_ledger_busy",
        "croupier_ledger_failed",
        "croupier_cache_up",
        "croupier_cache_errors",
        "croupier_cache_refused",
    }
    # bus metrics exist on a worker of a ring (tests/integration/test_sharding.py checks them)
    bus = {
        "croupier_bus_casts",
        "croupier_bus_calls",
        "croupier_bus_dropped",
        "croupier_bus_errors",
        "croupier_bus_call_seconds",
    }
    # rewards metrics exist when a zone has a casino (tests/unit/gameserver/test_rewards_pick.py)
    rewards = {
        "croupier_rewards_staged",
        "croupier_rewards_tick_failures",
        "croupier_pick_rounds_open",
        "croupier_pick_auto_finished",
    }
    dash = json.loads((DASH / "croupier.json").read_text())
    for panel in dash["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"croupier_\w+", target["expr"]):
                base = re.sub(r"_(total|bucket|count|sum)$", "", name)
                assert base in exported | casino | bus | rewards, f"{panel['title']}: {name} is not exported"
