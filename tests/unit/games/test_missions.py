"""Mission metrics: the win streak (consecutive winning rounds) per period instance."""

from __future__ import annotations

from games.bonus import SettledRound
from games.missions import Mission, apply_event

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
