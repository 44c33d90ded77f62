"""Slot rounds per second through the pure engine (no I/O), one reused compiled game per case.

Each case plays complete rounds (base spin plus any free spins) with the production RNG
(``SystemRng``); ``play_round`` builds the full outcome record, ``run_round`` is the engine core
used by the simulator. Reports the best of several repeats, one line per case.

Run: ``python -m bench.spin``
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from functools import partial

from games.catalog import read_catalog
from games.rng import SystemRng
from games.round import Bet
from games.slots import compile_game, decode_config, play_round
from games.slots.spin import run_round

CASES = [
    ("fruit_slot", "96.5", 1),
    ("atkins_diet", "base", 20),
    ("demo_orchard", "96", 20),
]
ROUNDS = 20_000
REPEATS = 5


def main() -> None:
    """Print rounds per second for each game, full outcome and engine core."""
    rng = SystemRng()
    for name, profile, lines in CASES:
        game = compile_game(decode_config(read_catalog(name)), profile)
        bet = Bet(coin=1, lines=lines)
        play_round(game, rng, bet)  # warm the line cache like a running server
        calls: dict[str, Callable[[], object]] = {
            "play_round": partial(play_round, game, rng, bet),
            "run_round": partial(run_round, game, rng, lines),
        }
        for label, call in calls.items():
            best = min(timeit.repeat(call, number=ROUNDS, repeat=REPEATS))
            print(f"{name:<13} {label:<10} lines={lines:<3} {ROUNDS / best:>10,.0f} rounds/s")


if __name__ == "__main__":
    main()
