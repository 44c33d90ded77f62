"""Missions: progress from settled-round events, each reward granted once (TRN-5).

A mission instance is ``(mission, player, period)``; the period key comes from the mission's
window so repeatable missions start fresh each period. Events are applied idempotently per round
id (the last ``RECENT_ROUNDS`` ids of an instance are kept; an event settled no later than the
newest one dropped from that window counts as already applied), and the reward key
``mission_id:player:period`` is returned exactly once, when the target is first reached; the
caller posts the reward under that key (the ledger refuses a second posting).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .bonus import RECENT_ROUNDS, Recent, SettledRound, applied, remember

__all__ = ["RECENT_ROUNDS", "Mission", "MissionProgress", "apply_event", "period_key"]

Metric = Literal["rounds", "wagered", "won", "feature_triggers", "big_wins", "win_streak"]


class Mission(msgspec.Struct, frozen=True, kw_only=True):
    """A mission: reach ``target`` of ``metric`` on ``games`` (empty = all) within the window.

    ``period_ms`` makes it repeatable: windows of that length starting at ``starts_at``.
    ``big_win_multiple`` defines a big win (win >= multiple x stake) for that metric.
    ``win_streak`` counts consecutive winning rounds (win > 0, in settlement order); a losing
    round restarts the streak, and the progress value is the longest streak of the period.
    ``points`` are scored on the zone's ``mission_points`` leaderboards when an instance is
    rewarded (0: none).
    """

    id: str
    metric: Metric
    target: int
    reward: int
    starts_at: int
    ends_at: int
    games: tuple[str, ...] = ()
    period_ms: int | None = None
    big_win_multiple: int = 10
    points: int = 0


class MissionProgress(msgspec.Struct, frozen=True, kw_only=True):
    """A player's progress on one mission instance."""

    mission_id: str
    player: str
    period: str
    value: int = 0
    #: every round id applied, in documents written before ``recent``: read, never grown
    rounds: frozenset[str] = frozenset()
    rewarded: bool = False
    streak: int = 0  # the current run of winning rounds (``win_streak``)
    #: ``(settled_at, round_id)`` of the last ``RECENT_ROUNDS`` rounds applied, oldest first
    recent: Recent = ()
    #: a round settled at or before this (ms) counts as applied: its id may have left ``recent``
    horizon: int = -1

    def applied(self, event: SettledRound) -> bool:
        """True if ``event`` was (or is taken as) already counted in this instance."""
        return event.round_id in self.rounds or applied(self.recent, self.horizon, event)


def period_key(mission: Mission, at: int) -> str | None:
    """The instance an event at ``at`` belongs to, or None outside the mission window."""
    if not mission.starts_at <= at < mission.ends_at:
        return None
    if mission.period_ms is None:
        return "once"
    return str((at - mission.starts_at) // mission.period_ms)


def _amount(mission: Mission, event: SettledRound) -> int:
    if mission.metric == "rounds":
        return 1
    if mission.metric == "wagered":
        return event.stake
    if mission.metric == "won":
        return event.win
    if mission.metric == "feature_triggers":
        return event.features
    return 1 if event.stake and event.win >= mission.big_win_multiple * event.stake else 0


def apply_event(
    mission: Mission, progress: MissionProgress | None, event: SettledRound
) -> tuple[MissionProgress | None, str | None]:
    """Apply one settled round.

    Args:
        mission: The mission definition.
        progress: The player's progress for the event's period, or None if none yet.
        event: The settled round (counted by its settlement time).

    Returns:
        ``(progress, reward_key)``; ``reward_key`` is set only on the event that first reaches
        the target. Events outside the window or for other games leave progress unchanged.
    """
    period = period_key(mission, event.settled_at)
    if period is None or (mission.games and event.game_id not in mission.games):
        return progress, None
    if progress is None or progress.period != period:
        progress = MissionProgress(mission_id=mission.id, player=event.player, period=period)
    if event.player != progress.player or progress.applied(event):
        return progress, None
    streak = progress.streak
    if mission.metric == "win_streak":
        streak = streak + 1 if event.win > 0 else 0
        value = max(progress.value, streak)
    else:
        value = progress.value + _amount(mission, event)
    reached = value >= mission.target and not progress.rewarded
    recent, horizon = remember(progress.recent, progress.horizon, event)
    progress = msgspec.structs.replace(
        progress,
        value=value,
        recent=recent,
        horizon=horizon,
        rewarded=progress.rewarded or reached,
        streak=streak,
    )
    return progress, f"mission:{mission.id}:{event.player}:{period}" if reached else None
