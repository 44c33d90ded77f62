"""Settings that contradict each other are refused at load."""

from __future__ import annotations

import pytest

from gameserver.config import Config, ServerSection, StoreSection


@pytest.mark.parametrize("delay", [-0.001, 5.0, 9.0])
def test_a_commit_delay_outside_zero_to_the_commit_timeout_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="commit_delay"):
        Config(store=StoreSection(commit_delay=delay, commit_timeout=5.0)).check()


def test_a_commit_delay_below_the_timeout_is_accepted() -> None:
    Config(store=StoreSection(commit_delay=0.002, commit_timeout=5.0)).check()
    assert StoreSection().commit_delay == 0.0


@pytest.mark.parametrize("ms", [-1.0, 1000.5])
def test_a_send_tick_outside_zero_to_a_second_is_refused(ms: float) -> None:
    with pytest.raises(ValueError, match="event_tick_ms"):
        Config(server=ServerSection(event_tick_ms=ms)).check()


def test_the_send_tick_is_off_by_default() -> None:
    Config(server=ServerSection(event_tick_ms=50)).check()
    assert ServerSection().event_tick_ms == 0.0
