"""Mission metrics: the win streak (consecutive winning rounds) per period instance."""

from __future__ import annotations

import msgspec

from games.bonus import SettledRound
from games.missions import RECENT_ROUNDS, Mission, MissionProgress, apply_event

T0 = 1_700_000_000_000
DAY = 86_400_000
STREAK = Mission(
    id="hot", metric="win_streak", target=3, reward=100, starts_at=T0, ends_at=T0 + 7 * DAY, period_ms=DAY
)


def rnd(i: int, win: int, at: int = T0 + 1) -> SettledRound:
    return SettledRound(
        round_id=f"r{i}", player="ann", game_id="g", category="slots", stake=10, win=win, settled_at=at + i
    )


def test_three_wins_in_a_row_complete_a_win_streak_once():
    progress = None
    keys = []
    for i, win in enumerate([5, 0, 5, 5, 0, 5, 5, 5, 5]):
        progress, key = apply_event(STREAK, progress, rnd(i, win))
        keys.append(key)
        if i == 3:
            assert progress is not None and progress.value == 2 and progress.streak == 2
        if i == 4:
            assert progress is not None and progress.value == 2 and progress.streak == 0  # the best stays
    assert progress is not None and progress.value == 4 and progress.rewarded
    assert [k for k in keys if k] == ["mission:hot:ann:0"]  # reached at round 7, once
    again, key = apply_event(STREAK, progress, rnd(8, 5))  # a duplicate delivery
    assert again == progress and key is None


def test_a_new_period_starts_a_new_streak():
    progress, _ = apply_event(STREAK, None, rnd(0, 5))
    progress, _ = apply_event(STREAK, progress, rnd(1, 5))
    progress, _ = apply_event(STREAK, progress, rnd(2, 5, at=T0 + DAY))
    assert progress is not None and progress.period == "1" and progress.value == 1


ROUNDS = Mission(
    id="daily", metric="rounds", target=50, reward=100, starts_at=T0, ends_at=T0 + 7 * DAY, period_ms=DAY
)


def test_progress_stays_small_however_many_rounds_a_period_has():
    """An instance keeps the last RECENT_ROUNDS ids, not every round of the period: its
    document is as cheap to read and write on round 2,000 as on round 1,100."""
    progress = None
    sizes = {}
    for i in range(2_000):
        progress, _ = apply_event(ROUNDS, progress, rnd(i, 0))
        if i + 1 in (1_100, 2_000):
            sizes[i + 1] = len(msgspec.msgpack.encode(progress))
    assert progress is not None and progress.value == 2_000 and progress.rewarded
    assert len(progress.recent) == RECENT_ROUNDS
    assert sizes[2_000] == sizes[1_100] < 1_000  # round ids of one length: no growth at all


def test_a_duplicate_is_not_counted_twice_inside_or_outside_the_window():
    progress = None
    for i in range(100):
        progress, _ = apply_event(ROUNDS, progress, rnd(i, 0))
    assert progress is not None and progress.value == 100
    for i in (99, 80, 3, 0):  # recent ones, and ones whose ids left the window long ago
        again, key = apply_event(ROUNDS, progress, rnd(i, 0))
        assert again == progress and key is None
    later, _ = apply_event(ROUNDS, progress, rnd(100, 0))
    assert later is not None and later.value == 101


def test_a_document_written_before_the_window_still_knows_its_rounds():
    legacy = msgspec.msgpack.encode(
        {"mission_id": "daily", "player": "ann", "period": "0", "value": 2, "rounds": ["r0", "r1"]}
    )
    progress = msgspec.msgpack.decode(legacy, type=MissionProgress)
    again, _ = apply_event(ROUNDS, progress, rnd(1, 0))
    assert again == progress and again.value == 2
    new, _ = apply_event(ROUNDS, progress, rnd(2, 0))
    assert new is not None and new.value == 3 and new.rounds == progress.rounds  # not grown
