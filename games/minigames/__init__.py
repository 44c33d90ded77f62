"""Mini-games (wheel of fortune, pick-a-box, scratch cards) with exact expected values.

Each produces a :class:`games.round.RoundOutcome`, the same shape as a slot round.
"""

from __future__ import annotations

from .common import MiniGameError, Prize
from .pick import PickConfig, PickState, auto_pick, finish_pick, open_box, pick_expected_credits, start_pick
from .scratch import ScratchConfig, ScratchTier, play_scratch, scratch_expected_credits
from .wheel import Segment, WheelConfig, expected_credits, spin_wheel, wheel_rtp

__all__ = [
    "MiniGameError",
    "PickConfig",
    "PickState",
    "Prize",
    "ScratchConfig",
    "ScratchTier",
    "Segment",
    "WheelConfig",
    "auto_pick",
    "expected_credits",
    "finish_pick",
    "open_box",
    "pick_expected_credits",
    "play_scratch",
    "scratch_expected_credits",
    "spin_wheel",
    "start_pick",
    "wheel_rtp",
]
