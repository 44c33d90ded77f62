"""Slot configuration: schema, consistency checks, content hash, profiles, TOML files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from games.catalog import catalog_names, read_catalog
from games.slots.config import ConfigError, math_hash
from games.slots.model import compile_game
from games.slots.validate import decode_config, load_config

from .slot_helpers import build, catalog_dict, tiny_config

Json = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Json], None]:
    def mutate(data: Json) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


BROKEN = [
    (_set("symbols.1.id", "W"), "duplicate symbol"),
    (_set("reel_sets.base.reels", [["A"], ["A"]]), "expected 3 reels"),
    (_set("reel_sets.base.reels.0", ["A", "Z"]), "unknown symbols"),
    (_set("reel_sets.base.model", "weighted_strip"), "weights must match"),
    (
        _set(
            "reel_sets.base", {"model": "weighted_strip", "reels": [["A", "B"]] * 3, "weights": [[1, 0]] * 3}
        ),
        "every outcome reachable",
    ),
    (
        _set(
            "reel_sets.base", {"model": "weighted_cell", "reels": [["A", "A"]] * 3, "weights": [[1, 1]] * 3}
        ),
        "distinct",
    ),
    (_set("evaluation.lines.paylines", [[0, 0, 1]]), "payline 1"),
    (_set("evaluation.ways", {"cost": 5}), "exactly one"),
    (_set("paytable.Q", {"3": 1}), "neither a symbol nor a group"),
    (_set("paytable.S", {"3": 1}), "scatters pay through"),
    (_set("paytable.A", {"4": 1}), "out of range"),
    (_set("paytable.A", {"2": -1}), "negative"),
    (_set("evaluation.scatters", [{"symbol": "A", "pays": {"3": 1}}]), "scatter or bonus symbol"),
    (_set("features", {"free_spins": {"trigger": "A", "awards": {"3": 5}}}), "trigger"),
    (_set("features", {"free_spins": {"trigger": "S", "awards": {"3": 0}}}), "at least one spin"),
    (_set("bets.coin_values", [1, 1]), "distinct positive"),
    (_set("rtp_profiles.p.reel_set", "nope"), "unknown reel set"),
    (_set("symbols.1.multiplier", 2), "wilds only"),
    (_set("symbols.0.not_substitute_for", ["Z"]), "unknown symbol"),
    (_set("declared", {"x": {"rtp": "1/2"}}), "unknown profile"),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN)
def test_inconsistent_configs_are_rejected(mutate: Callable[[Json], None], message: str) -> None:
    """Each inconsistency is reported with a readable message at load time."""
    data = copy.deepcopy(tiny_config())
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        build(data)


def test_schema_errors_are_config_errors() -> None:
    """Unknown fields and wrong types fail as ConfigError, not as a crash."""
    with pytest.raises(ConfigError):
        decode_config(msgspec.json.encode({**tiny_config(), "surprise": 1}))
    with pytest.raises(ConfigError):
        decode_config(msgspec.json.encode({**tiny_config(), "grid": {"reels": "3", "rows": 1}}))


def test_math_hash_ignores_presentation_only() -> None:
    """Re-titling or renaming symbols keeps the hash; changing a pay changes it (AUD-2, OUT-5)."""
    base = build(catalog_dict("atkins_diet"))
    skin = catalog_dict("atkins_diet")
    skin["title"] = "Atkins Diet (partner skin)"
    skin["symbols"][1]["name"] = "Filet"
    assert math_hash(build(skin)) == math_hash(base)
    changed = catalog_dict("atkins_diet")
    changed["paytable"]["Steak"]["5"] = 999
    assert math_hash(build(changed)) != math_hash(base)


def test_declared_hash_must_match() -> None:
    """A file whose declared math_hash differs from its content fails to load (AUD-2)."""
    data = catalog_dict("fruit_slot")
    data["math_hash"] = math_hash(build(data))
    assert decode_config(msgspec.json.encode(data)).math_hash == data["math_hash"]
    data["paytable"]["Bell"]["3"] = 21
    with pytest.raises(ConfigError, match="math_hash"):
        decode_config(msgspec.json.encode(data))


def test_unknown_profile_is_rejected() -> None:
    """A partner can only pick one of the certified profiles (AUD-3)."""
    config = build(catalog_dict("demo_orchard"))
    assert compile_game(config, "94").profile == "94"
    with pytest.raises(ConfigError, match="profile"):
        compile_game(config, "99")


@pytest.mark.parametrize("name", [n for n in catalog_names() if catalog_dict(n)["kind"] == "slot"])
def test_catalog_slot_files_load(name: str) -> None:
    """Every shipped slot file decodes and validates."""
    assert decode_config(read_catalog(name)).id == name


def test_toml_files_load(tmp_path: Path) -> None:
    """Game files may be TOML as well as JSON."""
    source = """
id = "tiny_toml"
version = "1"
grid = { reels = 3, rows = 1 }
symbols = [{ id = "A" }, { id = "B" }]
groups = {}
paytable = { A = { 3 = 5 } }
bets = { coin_values = [1] }
[reel_sets.base]
reels = [["A", "B"], ["A", "B"], ["A", "B"]]
[evaluation.lines]
paylines = [[0, 0, 0]]
[rtp_profiles.p]
reel_set = "base"
"""
    path = tmp_path / "tiny.toml"
    path.write_text(source)
    config = load_config(path)
    assert config.paytable == {"A": {3: 5}}
