"""Declarative slot configuration (msgspec), its validation and its content hash.

A game file is data only: integer weights, integer pays. Line and way pays are multiples of the
coin (line bet), scatter pays are multiples of the total stake. The layout follows the
requirements' recommended configuration model; the rules the engine applies are written on the
classes below. Validation and loading live in :mod:`games.slots.validate`.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

__all__ = [
    "Bets",
    "ConfigError",
    "Declared",
    "Evaluation",
    "FreeSpins",
    "Grid",
    "Lines",
    "MaxWin",
    "ReelSet",
    "RtpProfile",
    "ScatterPay",
    "SlotConfig",
    "SymbolDef",
    "Ways",
    "math_hash",
]

SymbolKind = Literal["regular", "wild", "scatter", "bonus", "blank"]


class ConfigError(ValueError):
    """A game file is malformed or inconsistent; ``problems`` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SymbolDef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One reel symbol.

    A ``wild`` matches every symbol in ``substitutes`` ("*" = every regular symbol) except
    ``not_substitute_for``. A substituting wild multiplies the line win by ``multiplier``
    (combined per ``Evaluation.wild_multipliers``). Wilds also pay their own entries when a line
    starts with wilds only ("pure-wild" combinations).
    """

    id: str
    kind: SymbolKind = "regular"
    name: str = ""
    substitutes: Literal["*"] | tuple[str, ...] = "*"
    not_substitute_for: tuple[str, ...] = ()
    multiplier: int = 1


class ReelSet(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Reels for one mode of one RTP profile.

    ``strip``: each reel is a circular list, a stop is uniform over positions and the window shows
    ``rows`` consecutive positions starting at the stop (wrapping). ``weighted_strip``: the same
    with an integer weight per stop. ``weighted_cell``: every cell is drawn independently from the
    reel's symbols with the given weights (no strip).
    """

    model: Literal["strip", "weighted_strip", "weighted_cell"] = "strip"
    reels: tuple[tuple[str, ...], ...]
    weights: tuple[tuple[int, ...], ...] | None = None


class Grid(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Window size."""

    reels: int
    rows: int


class Lines(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payline evaluation, left to right from the first reel; only the highest win per line.

    ``paylines`` give the row (0 = top) on each reel. If ``selectable``, a bet may play the first
    ``n`` lines for any ``n`` in ``1..len(paylines)``; otherwise all lines are always played.

    ``direction = "both"`` ("pays both ways") also pays every line right to left, from the last
    reel: that direction pays its own highest combination, except that a combination covering
    every reel is paid once (left to right). So a line pays at most two wins.
    """

    paylines: tuple[tuple[int, ...], ...]
    selectable: bool = False
    direction: Literal["ltr", "both"] = "ltr"


class Ways(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ways-to-win: adjacent reels from the left, ways = product of matching cells per reel.

    Every paytable entry pays independently, per way, in coins; the stake is ``cost`` coins.
    """

    cost: int


class ScatterPay(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Scatter pays: ``pays[n]`` times the total stake for ``n`` symbols anywhere in the window.

    A count above the largest key pays as the largest key not above it.
    """

    symbol: str
    pays: dict[int, int]


class Evaluation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a window is paid. Exactly one of ``lines`` and ``ways`` is set."""

    lines: Lines | None = None
    ways: Ways | None = None
    scatters: tuple[ScatterPay, ...] = ()
    wild_multipliers: Literal["product", "max"] = "product"


class FreeSpins(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Free-spin feature triggered by ``trigger`` symbols anywhere in the window.

    ``awards[n]`` spins for ``n`` trigger symbols (counts above the largest key use the largest
    key not above them). Free spins use the profile's free reel set, keep the base bet, and every
    free-spin line win is multiplied by ``multiplier`` (scatter wins too unless
    ``multiply_scatters`` is false). With ``retrigger``, ``retrigger_awards`` (default: the same
    awards) apply during free spins. ``max_spins`` caps the total spins of one round.
    """

    trigger: str
    awards: dict[int, int]
    multiplier: int = 1
    multiply_scatters: bool = True
    retrigger: bool = True
    retrigger_awards: dict[int, int] | None = None
    max_spins: int | None = None


class Features(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional game features."""

    free_spins: FreeSpins | None = None


class MaxWin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Round win cap: reaching ``multiple_of_total_bet`` pays the cap and ends the round."""

    multiple_of_total_bet: int


class Bets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Allowed coin values (line bet, or coin for ways games) in minor currency units."""

    coin_values: tuple[int, ...]


class RtpProfile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A certified RTP variant: same rules, different reels (AUD-3). ``free_reel_set`` defaults to
    ``reel_set``."""

    reel_set: str
    free_reel_set: str | None = None


class Declared(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Published figures for a profile, as exact fractions "p/q" (checked by the test suite).

    ``cap_loss_bound`` is set when a max-win cap can bind inside an unbounded feature: the
    capped RTP then lies in ``[rtp - cap_loss_bound, rtp]`` (see ``games.slots.exact``).
    """

    rtp: str
    hit_frequency: str | None = None
    cap_loss_bound: str | None = None
    method: Literal["exact", "simulation"] = "exact"


class SlotConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A complete slot game version. ``math_hash``, when present, must match :func:`math_hash`."""

    kind: Literal["slot"] = "slot"
    id: str
    version: str
    title: str = ""
    provider: str = ""
    grid: Grid
    symbols: tuple[SymbolDef, ...]
    groups: dict[str, tuple[str, ...]] = {}
    reel_sets: dict[str, ReelSet]
    evaluation: Evaluation
    paytable: dict[str, dict[int, int]]
    features: Features = Features()
    max_win: MaxWin | None = None
    bets: Bets
    rtp_profiles: dict[str, RtpProfile]
    declared: dict[str, Declared] = {}
    math_hash: str | None = None


def math_hash(config: SlotConfig) -> str:
    """Return the SHA-256 content hash of a game's math (AUD-2).

    Presentation fields (``title``, ``provider``, symbol names), the declared figures and the hash
    itself are excluded, so re-skinning a game never changes its math hash (OUT-5).
    """
    math = msgspec.structs.replace(
        config,
        title="",
        provider="",
        declared={},
        math_hash=None,
        symbols=tuple(msgspec.structs.replace(s, name="") for s in config.symbols),
    )
    data = msgspec.to_builtins(math, str_keys=True)
    lines = data["evaluation"].get("lines")
    if lines is not None and lines.get("direction") == "ltr":
        del lines["direction"]  # the default: hashes of left-to-right games stay as published
    canonical = msgspec.json.encode(data, order="sorted")
    return hashlib.sha256(canonical).hexdigest()
