"""Responsible-gaming checks as pure functions of ``(policy, player state, now)`` (RG-1 to RG-7).

Jurisdiction behaviour lives in a :class:`Policy` chosen per partner, never in code. Times are
integer milliseconds since the epoch; limit periods are rolling windows (day = 24 h, week = 7 days,
month = 30 days). Every check returns a :class:`Decision` with a stable reason code the server
maps to its error reply; state changes return a new :class:`PlayerState`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import msgspec

__all__ = [
    "DAY",
    "Activity",
    "Decision",
    "EntryPoint",
    "LimitSetting",
    "Policy",
    "PlayerState",
    "check_bet",
    "check_deposit",
    "check_entry",
    "check_game_rtp",
    "confirm_limit_increase",
    "effective_limit",
    "gb_policy",
    "is_self_excluded",
    "reactivate",
    "reality_check_due",
    "record",
    "request_limit",
    "self_exclude",
    "start_timeout",
]

SECOND = 1000
DAY = 86_400 * SECOND
PERIODS = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY}

LimitKind = Literal["deposit", "loss", "wager"]
Period = Literal["day", "week", "month"]
EntryPoint = Literal[
    "login",
    "withdraw",
    "deposit",
    "bet",
    "bonus_claim",
    "tournament_entry",
    "lottery_ticket",
    "referral_credit",
    "marketing",
]
# Entry points that stay open during a time-out or self-exclusion (a player can always log in to
# see the account and take money out).
_ALWAYS_OPEN: frozenset[str] = frozenset({"login", "withdraw"})


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """Jurisdiction / partner rules. Defaults are permissive; see :func:`gb_policy`."""

    min_cycle_ms: int = 0
    autoplay: bool = True
    feature_buy: bool = True
    min_rtp: str = "3/4"
    max_rtp: str | None = None
    limit_increase_cooling_ms: int = DAY
    confirm_limit_increase: bool = False
    timeout_options_ms: tuple[int, ...] = (DAY, 7 * DAY, 30 * DAY, 42 * DAY)
    self_exclusion_min_ms: int = 182 * DAY
    max_wagering_multiple: int | None = None
    mixed_product_promotions: bool = True
    blocked_regions: tuple[str, ...] = ()


def gb_policy() -> Policy:
    """Great Britain defaults from the requirements (RG-6, RG-2, RG-3, RG-4, BON-1, BON-2)."""
    return Policy(
        min_cycle_ms=2500,
        autoplay=False,
        feature_buy=False,
        limit_increase_cooling_ms=DAY,
        confirm_limit_increase=True,
        max_wagering_multiple=10,
        mixed_product_promotions=False,
    )


class LimitSetting(msgspec.Struct, frozen=True, kw_only=True):
    """A player limit; ``pending`` is an increase waiting for ``pending_at`` (None = no limit)."""

    kind: LimitKind
    period: Period
    amount: int | None
    pending: int | None = None
    pending_at: int | None = None


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """A money event used by the rolling limits."""

    at: int
    deposit: int = 0
    stake: int = 0
    win: int = 0


class PlayerState(msgspec.Struct, frozen=True, kw_only=True):
    """What the checks need to know about a player."""

    limits: tuple[LimitSetting, ...] = ()
    activity: tuple[Activity, ...] = ()
    last_round_at: dict[str, int] = {}
    timeout_until: int | None = None
    excluded_until: int | None = None
    reactivated: bool = False
    blacklisted: bool = False
    region: str | None = None
    session_started_at: int | None = None
    reality_check_ms: int | None = None
    #: the player's own session time limit: no bets once the session is this old
    session_limit_ms: int | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of a check: ``reason`` is a stable code; ``retry_at`` when waiting helps."""

    allowed: bool
    reason: str | None = None
    retry_at: int | None = None


ALLOWED = Decision(allowed=True)


def _deny(reason: str, retry_at: int | None = None) -> Decision:
    return Decision(allowed=False, reason=reason, retry_at=retry_at)


def is_self_excluded(state: PlayerState, now: int) -> bool:
    """Excluded from the start until expiry *and* an explicit reactivation (RG-4)."""
    if state.excluded_until is None:
        return False
    return now < state.excluded_until or not state.reactivated


def check_entry(policy: Policy, state: PlayerState, now: int, entry: EntryPoint) -> Decision:
    """Blacklist, region, self-exclusion and time-out checks for any entry point (RG-7).

    Login and withdrawal stay open to excluded and timed-out players; blacklisted players and
    blocked regions are refused everything but withdrawal.
    """
    if state.blacklisted and entry != "withdraw":
        return _deny("blacklisted")
    if state.region is not None and state.region in policy.blocked_regions and entry != "withdraw":
        return _deny("region_blocked")
    if entry in _ALWAYS_OPEN:
        return ALLOWED
    if is_self_excluded(state, now):
        return _deny("self_excluded")
    if state.timeout_until is not None and now < state.timeout_until:
        return _deny("timeout", state.timeout_until)
    return ALLOWED


def effective_limit(setting: LimitSetting, now: int, policy: Policy) -> int | None:
    """The amount in force now: a pending increase applies once cooled off, or, when the policy
    asks for a re-confirmation, only after :func:`confirm_limit_increase`."""
    cooled = setting.pending_at is not None and now >= setting.pending_at
    if cooled and not policy.confirm_limit_increase:
        return setting.pending
    return setting.amount


def _window(state: PlayerState, now: int, period: Period) -> list[Activity]:
    start = now - PERIODS[period]
    return [a for a in state.activity if start < a.at <= now]


def _limit_decision(policy: Policy, state: PlayerState, now: int, kind: LimitKind, amount: int) -> Decision:
    # Every limit of the kind must hold, so the lowest always applies (RG-1).
    for setting in state.limits:
        if setting.kind != kind:
            continue
        cap = effective_limit(setting, now, policy)
        if cap is None:
            continue
        events = _window(state, now, setting.period)
        if kind == "deposit":
            used = sum(a.deposit for a in events)
        elif kind == "wager":
            used = sum(a.stake for a in events)
        else:
            used = max(0, sum(a.stake - a.win for a in events))
        if used + amount > cap:
            oldest = min((a.at for a in events), default=now)
            return _deny(f"{kind}_limit", oldest + PERIODS[setting.period])
    return ALLOWED


def check_deposit(policy: Policy, state: PlayerState, now: int, amount: int) -> Decision:
    """May the player deposit ``amount`` now? (RG-1, RG-3, RG-4, RG-7)."""
    decision = check_entry(policy, state, now, "deposit")
    return decision if not decision.allowed else _limit_decision(policy, state, now, "deposit", amount)


def check_bet(
    policy: Policy,
    state: PlayerState,
    now: int,
    game_id: str,
    stake: int,
    *,
    autoplay: bool = False,
    feature_buy: bool = False,
) -> Decision:
    """May the player stake ``stake`` on ``game_id`` now?

    Checks exclusion and time-out, autoplay and feature buy (RG-6, OUT-7), the minimum game cycle
    per game (RG-6), the player's session time limit, and the wager and loss limits (the stake is
    the most this round can lose).
    """
    decision = check_entry(policy, state, now, "bet")
    if not decision.allowed:
        return decision
    if autoplay and not policy.autoplay:
        return _deny("autoplay_disabled")
    if feature_buy and not policy.feature_buy:
        return _deny("feature_buy_disabled")
    last = state.last_round_at.get(game_id)
    if last is not None and now - last < policy.min_cycle_ms:
        return _deny("min_cycle", last + policy.min_cycle_ms)
    started, limit = state.session_started_at, state.session_limit_ms
    if started is not None and limit is not None and now - started >= limit:
        return _deny("session_limit")
    kinds: tuple[LimitKind, ...] = ("wager", "loss")
    for kind in kinds:
        decision = _limit_decision(policy, state, now, kind, stake)
        if not decision.allowed:
            return decision
    return ALLOWED


def record(state: PlayerState, activity: Activity, game_id: str | None = None) -> PlayerState:
    """Append a money event (and the round start time for ``game_id``)."""
    rounds = state.last_round_at if game_id is None else {**state.last_round_at, game_id: activity.at}
    return msgspec.structs.replace(state, activity=(*state.activity, activity), last_round_at=rounds)


def request_limit(
    policy: Policy, state: PlayerState, now: int, kind: LimitKind, period: Period, amount: int | None
) -> PlayerState:
    """Set, lower, raise or remove a limit (``amount=None`` removes it).

    A decrease (or a first limit) applies immediately; an increase or removal waits for the
    cooling-off period (RG-2) and, if the policy says so, a confirmation after it.
    """
    current = next((s for s in state.limits if s.kind == kind and s.period == period), None)
    in_force = None if current is None else effective_limit(current, now, policy)
    if current is None or (amount is not None and (in_force is None or amount <= in_force)):
        new = LimitSetting(kind=kind, period=period, amount=amount)
    else:
        new = LimitSetting(
            kind=kind,
            period=period,
            amount=in_force,
            pending=amount,
            pending_at=now + policy.limit_increase_cooling_ms,
        )
    others = tuple(s for s in state.limits if not (s.kind == kind and s.period == period))
    return msgspec.structs.replace(state, limits=(*others, new))


def confirm_limit_increase(state: PlayerState, now: int, kind: LimitKind, period: Period) -> PlayerState:
    """Positive re-confirmation of a pending increase; only valid once cooling has passed.

    Raises:
        ValueError: If there is no pending increase or it is still cooling off.
    """
    for s in state.limits:
        if s.kind == kind and s.period == period and s.pending_at is not None:
            if now < s.pending_at:
                raise ValueError("the increase is still in its cooling-off period")
            confirmed = LimitSetting(kind=kind, period=period, amount=s.pending)
            others = tuple(x for x in state.limits if x is not s)
            return msgspec.structs.replace(state, limits=(*others, confirmed))
    raise ValueError("no pending increase")


def start_timeout(policy: Policy, state: PlayerState, now: int, duration_ms: int) -> PlayerState:
    """Start a time-out immediately (RG-3); the duration must be one the policy offers.

    Raises:
        ValueError: If the duration is not offered.
    """
    if duration_ms not in policy.timeout_options_ms:
        raise ValueError("time-out duration not offered")
    until = max(now + duration_ms, state.timeout_until or 0)
    return msgspec.structs.replace(state, timeout_until=until)


def self_exclude(
    policy: Policy, state: PlayerState, now: int, duration_ms: int, *, confirmed: bool
) -> PlayerState:
    """Self-exclude immediately after a positive action, for at least the policy minimum (RG-4).

    Raises:
        ValueError: Without confirmation, or for a period below the minimum.
    """
    if not confirmed:
        raise ValueError("self-exclusion needs a positive confirmation")
    if duration_ms < policy.self_exclusion_min_ms:
        raise ValueError("self-exclusion period below the minimum")
    until = max(now + duration_ms, state.excluded_until or 0)
    return msgspec.structs.replace(state, excluded_until=until, reactivated=False)


def reactivate(state: PlayerState, now: int) -> PlayerState:
    """Explicit re-activation after the exclusion expired; never automatic (RG-4).

    Raises:
        ValueError: If the exclusion is still running.
    """
    if state.excluded_until is not None and now < state.excluded_until:
        raise ValueError("the self-exclusion has not expired")
    return msgspec.structs.replace(state, reactivated=True)


def reality_check_due(state: PlayerState, now: int, last_shown: int | None) -> bool:
    """True when a reality check (elapsed time, net position) must be shown (RG-5)."""
    if state.reality_check_ms is None or state.session_started_at is None:
        return False
    since = state.session_started_at if last_shown is None else last_shown
    return now - since >= state.reality_check_ms


def check_game_rtp(policy: Policy, rtp: Fraction, cap_loss_bound: Fraction | None = None) -> Decision:
    """Config-load check of an RTP against the floor and ceiling (OUT-3).

    With a cap bound the lowest possible RTP (``rtp - bound``) must clear the floor.
    """
    lowest = rtp - (cap_loss_bound or 0)
    if lowest < Fraction(policy.min_rtp):
        return _deny("rtp_below_floor")
    if policy.max_rtp is not None and rtp > Fraction(policy.max_rtp):
        return _deny("rtp_above_ceiling")
    return ALLOWED
