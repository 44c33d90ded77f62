"""Time of the exact par-sheet calculation (RTP, hit frequencies, sigma, contributions).

Cases: the demo 5x3 20-line game on 40-stop reels with wild x2, scatter and free spins with
retriggers (both RTP profiles), and the Atkins Diet 5x3 20-line game on 32-stop reels. Reports
the best of several repeats, one line per case.

Run: ``python -m bench.slotcalc``
"""

from __future__ import annotations

import timeit

from games.catalog import read_catalog
from games.slots import SlotConfig, SlotReport, compile_game, decode_config, exact_report

CASES = [("atkins_diet", "base"), ("demo_orchard", "96"), ("demo_orchard", "94")]
REPEATS = 3


def main() -> None:
    """Print the exact-calculation time and the resulting RTP for each case."""
    for name, profile in CASES:
        config = decode_config(read_catalog(name))

        def run(config: SlotConfig = config, profile: str = profile) -> SlotReport:
            return exact_report(compile_game(config, profile))

        best = min(timeit.repeat(run, number=1, repeat=REPEATS))
        report = exact_report(compile_game(config, profile))
        print(f"{name:<13} profile={profile:<5} {best:6.2f} s  rtp={float(report.rtp):.8f}")


if __name__ == "__main__":
    main()
