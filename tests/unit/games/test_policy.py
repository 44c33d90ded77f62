"""Responsible-gaming checks on a mocked clock (RG-1 to RG-7, OUT-3)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from games.policy import (
    DAY,
    Activity,
    EntryPoint,
    PlayerState,
    Policy,
    check_bet,
    check_deposit,
    check_entry,
    check_game_rtp,
    confirm_limit_increase,
    gb_policy,
    is_self_excluded,
    reactivate,
    reality_check_due,
    record,
    request_limit,
    self_exclude,
    start_timeout,
)
from games.slots.exact import exact_report

from .slot_helpers import catalog_dict, game_of

T0 = 1_700_000_000_000
HOUR = DAY // 24
GB = gb_policy()


def test_lowest_deposit_limit_applies() -> None:
    """Daily 10 + weekly 100: after 10 today further deposits are blocked until the day rolls (RG-1)."""
    state = request_limit(GB, PlayerState(), T0, "deposit", "day", 1000)
    state = request_limit(GB, state, T0, "deposit", "week", 10_000)
    assert check_deposit(GB, state, T0, 1000).allowed
    state = record(state, Activity(at=T0, deposit=1000))
    blocked = check_deposit(GB, state, T0 + HOUR, 1)
    assert (blocked.allowed, blocked.reason, blocked.retry_at) == (False, "deposit_limit", T0 + DAY)
    assert check_deposit(GB, state, T0 + DAY, 1000).allowed


def test_weekly_limit_binds_across_days() -> None:
    """Rolling weekly window: 7 daily deposits of 15 reach a weekly 100 on day 7."""
    state = request_limit(GB, PlayerState(), T0, "deposit", "week", 100)
    for day in range(6):
        state = record(state, Activity(at=T0 + day * DAY, deposit=15))
    assert check_deposit(GB, state, T0 + 6 * DAY, 10).allowed
    assert not check_deposit(GB, state, T0 + 6 * DAY, 11).allowed


def test_decrease_is_immediate_increase_waits_24h_and_confirmation() -> None:
    """An increase at t is blocked at t+23h59m and active after t+24h once confirmed (RG-2)."""
    state = request_limit(GB, PlayerState(), T0, "deposit", "day", 5000)
    state = request_limit(GB, state, T0, "deposit", "day", 1000)  # decrease: immediate
    assert not check_deposit(GB, state, T0, 1001).allowed
    state = request_limit(GB, state, T0, "deposit", "day", 3000)  # increase: cooling off
    assert not check_deposit(GB, state, T0 + DAY - 60_000, 2000).allowed
    with pytest.raises(ValueError):
        confirm_limit_increase(state, T0 + DAY - 60_000, "deposit", "day")
    assert not check_deposit(GB, state, T0 + DAY, 2000).allowed  # GB: needs re-confirmation
    state = confirm_limit_increase(state, T0 + DAY, "deposit", "day")
    assert check_deposit(GB, state, T0 + DAY, 2000).allowed
    relaxed = Policy(limit_increase_cooling_ms=DAY)
    pending = request_limit(
        relaxed, request_limit(relaxed, PlayerState(), T0, "deposit", "day", 1), T0, "deposit", "day", 9
    )
    assert check_deposit(relaxed, pending, T0 + DAY, 9).allowed


def test_removing_a_limit_is_an_increase() -> None:
    """Removing a limit also waits for the cooling-off period."""
    state = request_limit(GB, PlayerState(), T0, "wager", "day", 100)
    state = request_limit(GB, state, T0, "wager", "day", None)
    assert check_bet(GB, state, T0 + HOUR, "g", 101).reason == "wager_limit"


def test_loss_limit_counts_net_losses() -> None:
    """Loss limit: stakes minus wins in the window, plus the new stake, must stay within it."""
    state = request_limit(GB, PlayerState(), T0, "loss", "day", 100)
    state = record(state, Activity(at=T0, stake=80, win=30), "g")
    assert check_bet(GB, state, T0 + 3000, "g", 50).allowed
    assert check_bet(GB, state, T0 + 3000, "g", 51).reason == "loss_limit"


@pytest.mark.parametrize("days", [1, 7, 30, 42])
def test_timeouts_apply_at_once_and_expire(days: int) -> None:
    """Time-outs of 24 h, 1 week, 1 month and 6 weeks refuse play and deposits until they end (RG-3)."""
    state = start_timeout(GB, PlayerState(), T0, days * DAY)
    assert check_bet(GB, state, T0, "g", 1).reason == "timeout"
    assert check_deposit(GB, state, T0 + days * DAY - 1, 1).reason == "timeout"
    assert check_entry(GB, state, T0, "login").allowed
    assert check_bet(GB, state, T0 + days * DAY, "g", 1).allowed


def test_timeout_durations_come_from_the_policy() -> None:
    """A duration the policy does not offer is refused."""
    with pytest.raises(ValueError):
        start_timeout(GB, PlayerState(), T0, 3 * DAY)


BLOCKED: list[EntryPoint] = [
    "deposit",
    "bet",
    "bonus_claim",
    "tournament_entry",
    "lottery_ticket",
    "referral_credit",
    "marketing",
]


@pytest.mark.parametrize("entry", BLOCKED)
def test_self_exclusion_refuses_every_gambling_entry_point(entry: EntryPoint) -> None:
    """Self-excluded players are refused everywhere but login and withdrawal (RG-4, RG-7)."""
    state = self_exclude(GB, PlayerState(), T0, 183 * DAY, confirmed=True)
    assert check_entry(GB, state, T0, entry).reason == "self_excluded"
    assert check_entry(GB, state, T0, "withdraw").allowed


def test_self_exclusion_needs_confirmation_minimum_and_explicit_reactivation() -> None:
    """Minimum 6 months, positive action, and no automatic end after expiry (RG-4)."""
    with pytest.raises(ValueError):
        self_exclude(GB, PlayerState(), T0, 183 * DAY, confirmed=False)
    with pytest.raises(ValueError):
        self_exclude(GB, PlayerState(), T0, 90 * DAY, confirmed=True)
    state = self_exclude(GB, PlayerState(), T0, 183 * DAY, confirmed=True)
    with pytest.raises(ValueError):
        reactivate(state, T0 + 100 * DAY)
    assert is_self_excluded(state, T0 + 400 * DAY)
    assert not is_self_excluded(reactivate(state, T0 + 400 * DAY), T0 + 400 * DAY)


@pytest.mark.parametrize(
    ("state", "entry", "reason"),
    [
        (PlayerState(blacklisted=True), "login", "blacklisted"),
        (PlayerState(blacklisted=True), "lottery_ticket", "blacklisted"),
        (PlayerState(region="XX"), "deposit", "region_blocked"),
        (PlayerState(region="XX"), "withdraw", None),
        (PlayerState(), "referral_credit", None),
    ],
)
def test_blacklist_and_region_checks_on_entry_points(
    state: PlayerState, entry: EntryPoint, reason: str | None
) -> None:
    """Operator blacklist and jurisdiction blocks apply at every entry point (RG-7)."""
    policy = Policy(blocked_regions=("XX",))
    assert check_entry(policy, state, T0, entry).reason == reason


def test_minimum_cycle_autoplay_and_feature_buy() -> None:
    """GB: spins 1 s apart give min_cycle; autoplay and feature buy are refused (RG-6, OUT-7)."""
    state = record(PlayerState(), Activity(at=T0, stake=10), "slot-a")
    decision = check_bet(GB, state, T0 + 1000, "slot-a", 10)
    assert (decision.reason, decision.retry_at) == ("min_cycle", T0 + 2500)
    assert check_bet(GB, state, T0 + 1000, "slot-b", 10).allowed
    assert check_bet(GB, state, T0 + 2500, "slot-a", 10).allowed
    assert check_bet(GB, state, T0 + 5000, "slot-a", 10, autoplay=True).reason == "autoplay_disabled"
    assert check_bet(GB, state, T0 + 5000, "slot-a", 10, feature_buy=True).reason == "feature_buy_disabled"
    assert check_bet(Policy(), state, T0 + 1, "slot-a", 10, autoplay=True).allowed


def test_reality_check_intervals() -> None:
    """A reminder is due at each chosen interval (RG-5)."""
    state = PlayerState(session_started_at=T0, reality_check_ms=30 * 60_000)
    assert not reality_check_due(state, T0 + 29 * 60_000, None)
    assert reality_check_due(state, T0 + 30 * 60_000, None)
    assert not reality_check_due(state, T0 + 45 * 60_000, T0 + 30 * 60_000)
    assert reality_check_due(state, T0 + 60 * 60_000, T0 + 30 * 60_000)


def test_rtp_floor_and_ceiling_at_load() -> None:
    """Configs are checked against the policy's RTP band (OUT-3), conservatively under a cap."""
    fruit = exact_report(game_of(catalog_dict("fruit_slot")))
    assert check_game_rtp(Policy(min_rtp="4/5", max_rtp="23/25"), fruit.rtp).reason == "rtp_above_ceiling"
    assert check_game_rtp(Policy(min_rtp="97/100"), fruit.rtp).reason == "rtp_below_floor"
    assert check_game_rtp(Policy(), fruit.rtp).allowed
    near = Fraction(3, 4) + Fraction(1, 10**6)
    assert not check_game_rtp(Policy(), near, cap_loss_bound=Fraction(1, 10**5)).allowed


def test_session_time_limit_refuses_bets_once_reached() -> None:
    from games.policy import PlayerState, Policy, check_bet

    state = PlayerState(session_started_at=1_000, session_limit_ms=60_000)
    assert check_bet(Policy(), state, 60_999, "g", 1).allowed
    refused = check_bet(Policy(), state, 61_000, "g", 1)
    assert not refused.allowed and refused.reason == "session_limit"
    assert check_bet(Policy(), PlayerState(session_started_at=1_000), 10**12, "g", 1).allowed
