"""Validation and loading of slot game files (schema errors, consistency, RNG-5, AUD-2)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from .config import ConfigError, ReelSet, SlotConfig, math_hash

__all__ = ["decode_config", "load_config", "validate"]


def decode_config(data: bytes, *, fmt: Literal["json", "toml"] = "json") -> SlotConfig:
    """Decode and validate a game file.

    Args:
        data: The file content.
        fmt: ``"json"`` or ``"toml"``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: On a schema error, an inconsistency, or a ``math_hash`` mismatch.
    """
    try:
        if fmt == "toml":
            config = msgspec.toml.decode(data, type=SlotConfig)
        else:
            config = msgspec.json.decode(data, type=SlotConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError([str(exc)]) from exc
    validate(config)
    if config.math_hash is not None and config.math_hash != math_hash(config):
        raise ConfigError(["math_hash does not match the game's math (AUD-2)"])
    return config


def load_config(path: str | Path) -> SlotConfig:
    """Read a ``.json`` or ``.toml`` game file; see :func:`decode_config`."""
    path = Path(path)
    return decode_config(path.read_bytes(), fmt="toml" if path.suffix == ".toml" else "json")


def validate(config: SlotConfig) -> None:
    """Check a decoded configuration for consistency.

    Raises:
        ConfigError: Listing every problem found.
    """
    problems: list[str] = []
    kinds = _check_symbols(config, problems)
    for name, reel_set in config.reel_sets.items():
        _check_reel_set(config, name, reel_set, kinds, problems)
    _check_evaluation(config, kinds, problems)
    _check_paytable(config, kinds, problems)
    _check_features(config, kinds, problems)
    _check_bets_and_profiles(config, problems)
    if problems:
        raise ConfigError(problems)


def _check_symbols(config: SlotConfig, problems: list[str]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for sym in config.symbols:
        if sym.id in kinds:
            problems.append(f"duplicate symbol {sym.id!r}")
        kinds[sym.id] = sym.kind
    for sym in config.symbols:
        if sym.kind != "wild":
            if sym.multiplier != 1 or sym.substitutes != "*" or sym.not_substitute_for:
                problems.append(f"symbol {sym.id!r}: substitution fields are for wilds only")
            continue
        listed = () if sym.substitutes == "*" else sym.substitutes
        for ref in (*listed, *sym.not_substitute_for):
            if ref not in kinds:
                problems.append(f"wild {sym.id!r} refers to unknown symbol {ref!r}")
        if sym.multiplier < 1:
            problems.append(f"wild {sym.id!r}: multiplier must be >= 1")
    for group, members in config.groups.items():
        if group in kinds:
            problems.append(f"group {group!r} has the same id as a symbol")
        if not members or any(m not in kinds for m in members):
            problems.append(f"group {group!r} must list known symbols")
    if config.grid.reels < 1 or config.grid.rows < 1:
        problems.append("grid needs at least one reel and one row")
    return kinds


def _check_reel_set(
    config: SlotConfig, name: str, reel_set: ReelSet, kinds: dict[str, str], problems: list[str]
) -> None:
    where = f"reel set {name!r}"
    if len(reel_set.reels) != config.grid.reels:
        problems.append(f"{where}: expected {config.grid.reels} reels, got {len(reel_set.reels)}")
    for i, reel in enumerate(reel_set.reels):
        unknown = sorted({s for s in reel if s not in kinds})
        if unknown:
            problems.append(f"{where} reel {i + 1}: unknown symbols {unknown}")
        if reel_set.model != "weighted_cell" and len(reel) < config.grid.rows:
            problems.append(f"{where} reel {i + 1}: strip shorter than the window")
        if reel_set.model == "weighted_cell" and len(set(reel)) != len(reel):
            problems.append(f"{where} reel {i + 1}: weighted_cell symbols must be distinct")
        if not reel:
            problems.append(f"{where} reel {i + 1}: empty")
    if reel_set.model == "strip":
        if reel_set.weights is not None:
            problems.append(f"{where}: model 'strip' takes no weights")
        return
    weights = reel_set.weights
    if weights is None or [len(w) for w in weights] != [len(r) for r in reel_set.reels]:
        problems.append(f"{where}: weights must match the reels one for one")
    elif any(w <= 0 for reel in weights for w in reel):
        # RNG-5: a stop or symbol with weight 0 could never be produced.
        problems.append(f"{where}: every weight must be positive (every outcome reachable)")


def _check_evaluation(config: SlotConfig, kinds: dict[str, str], problems: list[str]) -> None:
    ev = config.evaluation
    if (ev.lines is None) == (ev.ways is None):
        problems.append("evaluation needs exactly one of 'lines' and 'ways'")
    if ev.lines is not None:
        if not ev.lines.paylines:
            problems.append("lines: at least one payline is required")
        for i, line in enumerate(ev.lines.paylines):
            if len(line) != config.grid.reels or any(not 0 <= r < config.grid.rows for r in line):
                problems.append(f"payline {i + 1}: needs one row in range per reel")
    if ev.ways is not None and ev.ways.cost < 1:
        problems.append("ways: cost must be >= 1")
    if ev.ways is not None and ev.wild_multipliers == "max":
        problems.append("ways: wild multipliers combine by product only")
    cells = config.grid.reels * config.grid.rows
    for scatter in ev.scatters:
        if kinds.get(scatter.symbol) not in ("scatter", "bonus"):
            problems.append(f"scatter pay {scatter.symbol!r}: needs a scatter or bonus symbol")
        _check_count_map(f"scatter pay {scatter.symbol!r}", scatter.pays, cells, problems)


def _check_paytable(config: SlotConfig, kinds: dict[str, str], problems: list[str]) -> None:
    for entry, pays in config.paytable.items():
        if entry in config.groups:
            members = config.groups[entry]
        elif entry in kinds:
            members = (entry,)
        else:
            problems.append(f"paytable entry {entry!r} is neither a symbol nor a group")
            continue
        if any(kinds.get(m) == "scatter" for m in members):
            problems.append(f"paytable entry {entry!r}: scatters pay through evaluation.scatters")
        _check_count_map(f"paytable entry {entry!r}", pays, config.grid.reels, problems)


def _check_count_map(where: str, counts: dict[int, int], limit: int, problems: list[str]) -> None:
    for count, value in counts.items():
        if not 1 <= count <= limit:
            problems.append(f"{where}: count {count} out of range 1..{limit}")
        if value < 0:
            problems.append(f"{where}: negative value {value}")


def _check_features(config: SlotConfig, kinds: dict[str, str], problems: list[str]) -> None:
    fs = config.features.free_spins
    if fs is None:
        return
    if kinds.get(fs.trigger) not in ("scatter", "bonus"):
        problems.append(f"free spins trigger {fs.trigger!r}: needs a scatter or bonus symbol")
    if not fs.awards or any(v < 1 for v in fs.awards.values()):
        problems.append("free spins: awards must give at least one spin")
    _check_count_map("free spins awards", fs.awards, config.grid.reels * config.grid.rows, problems)
    if fs.retrigger_awards is not None:
        _check_count_map(
            "free spins retrigger awards", fs.retrigger_awards, config.grid.reels * config.grid.rows, problems
        )
    if fs.multiplier < 1:
        problems.append("free spins: multiplier must be >= 1")
    if fs.max_spins is not None and fs.max_spins < 1:
        problems.append("free spins: max_spins must be >= 1")


def _check_bets_and_profiles(config: SlotConfig, problems: list[str]) -> None:
    coins = config.bets.coin_values
    if not coins or any(c < 1 for c in coins) or len(set(coins)) != len(coins):
        problems.append("bets: coin values must be distinct positive integers")
    if config.max_win is not None and config.max_win.multiple_of_total_bet < 1:
        problems.append("max_win: multiple must be >= 1")
    if not config.rtp_profiles:
        problems.append("at least one RTP profile is required")
    for name, profile in config.rtp_profiles.items():
        for ref in (profile.reel_set, profile.free_reel_set):
            if ref is not None and ref not in config.reel_sets:
                problems.append(f"profile {name!r}: unknown reel set {ref!r}")
    for name in config.declared:
        if name not in config.rtp_profiles:
            problems.append(f"declared figures for unknown profile {name!r}")
