"""Slot engine: validated config, pure round evaluation, exact par sheet, Monte-Carlo check.

Typical use by a server::

    config = decode_config(read_catalog("demo_orchard"))
    game = compile_game(config, profile="96")          # the partner's certified profile
    outcome = play_round(game, SystemRng(), Bet(coin=10, lines=20))
    report = exact_report(game)                         # Fractions: RTP, hit frequency, sigma
"""

from __future__ import annotations

from .config import SlotConfig, math_hash
from .exact import SlotReport, exact_report
from .model import SlotGame, compile_game
from .spin import InvalidBet, RoundTooLong, play_round
from .validate import decode_config, load_config

__all__ = [
    "InvalidBet",
    "RoundTooLong",
    "SlotConfig",
    "SlotGame",
    "SlotReport",
    "compile_game",
    "decode_config",
    "exact_report",
    "load_config",
    "math_hash",
    "play_round",
]
