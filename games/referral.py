"""Referral rewards: qualifying activity, hold period, once per pair, fraud signals (REF-1, REF-2).

A referral pays only after the referee is verified and has deposited and wagered enough within
the qualifying window, and only once the hold period has passed. The idempotency key
``referral:<referrer>:<referee>`` makes the reward once per pair. Linked accounts (shared device,
payment instrument, recent IP, or the same normalised e-mail) and referral rings (A -> B -> C -> A)
are *held for review*, never auto-rejected; excluded or blacklisted players neither give nor
receive rewards; each referrer is capped per period.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from .ledger import Entry, Posting, cash_account, house_account

__all__ = [
    "AccountSignals",
    "Referral",
    "ReferralDecision",
    "ReferralRule",
    "RefereeActivity",
    "evaluate_referral",
    "in_ring",
    "linked",
    "referral_postings",
]

DAY_MS = 86_400_000


class ReferralRule(msgspec.Struct, frozen=True, kw_only=True):
    """Qualification and payout rules of a referral programme."""

    min_deposit: int
    min_wagered: int
    within_days: int
    hold_days: int
    reward_referrer: int
    reward_referee: int
    cap_per_period: int
    period_days: int = 30
    require_kyc: bool = True
    ip_window_ms: int = DAY_MS


class Referral(msgspec.Struct, frozen=True, kw_only=True):
    """A referee's sign-up through a referrer's link."""

    referrer: str
    referee: str
    created_at: int


class RefereeActivity(msgspec.Struct, frozen=True, kw_only=True):
    """What the referee has done since sign-up."""

    kyc_verified: bool = False
    deposited: int = 0
    wagered: int = 0
    qualified_at: int | None = None


class AccountSignals(msgspec.Struct, frozen=True, kw_only=True):
    """Fraud-relevant facts about an account."""

    devices: frozenset[str] = frozenset()
    payment_instruments: frozenset[str] = frozenset()
    ips: dict[str, int] = {}
    email: str = ""
    excluded: bool = False


class ReferralDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Status of a referral; ``key`` is the once-per-pair idempotency key."""

    status: Literal["pending", "holding", "payable", "held_for_review", "rejected", "paid"]
    reason: str | None = None
    key: str
    release_at: int | None = None


def _normalise(email: str) -> str:
    local, _, domain = email.lower().partition("@")
    return local.split("+", 1)[0].replace(".", "") + "@" + domain


def linked(a: AccountSignals, b: AccountSignals, ip_window_ms: int = DAY_MS) -> str | None:
    """The first shared signal between two accounts, or None."""
    if a.devices & b.devices:
        return "shared_device"
    if a.payment_instruments & b.payment_instruments:
        return "shared_payment"
    for ip, seen in a.ips.items():
        if ip in b.ips and abs(b.ips[ip] - seen) <= ip_window_ms:
            return "shared_ip"
    if a.email and b.email and _normalise(a.email) == _normalise(b.email):
        return "email_pattern"
    return None


def in_ring(referred_by: Mapping[str, str], referrer: str, referee: str) -> bool:
    """True if ``referee`` already (transitively) referred ``referrer``: a referral cycle."""
    seen = set()
    current: str | None = referrer
    while current is not None and current not in seen:
        if current == referee:
            return True
        seen.add(current)
        current = referred_by.get(current)
    return False


def evaluate_referral(
    rule: ReferralRule,
    referral: Referral,
    activity: RefereeActivity,
    signals: tuple[AccountSignals, AccountSignals],
    referred_by: Mapping[str, str],
    paid_keys: frozenset[str],
    referrer_paid_in_period: int,
    now: int,
) -> ReferralDecision:
    """Decide what a referral is worth now.

    Args:
        signals: ``(referrer, referee)`` fraud signals.
        referred_by: Existing referee -> referrer edges (for ring detection).
        paid_keys: Keys of referral rewards already paid.
        referrer_paid_in_period: Rewards the referrer received in the current period.
    """
    key = f"referral:{referral.referrer}:{referral.referee}"
    if key in paid_keys:
        return ReferralDecision(status="paid", key=key)
    if referral.referrer == referral.referee:
        return ReferralDecision(status="rejected", reason="self_referral", key=key)
    if signals[0].excluded or signals[1].excluded:
        return ReferralDecision(status="rejected", reason="excluded", key=key)
    flag = linked(*signals, rule.ip_window_ms)
    if flag is None and in_ring(referred_by, referral.referrer, referral.referee):
        flag = "referral_ring"
    if flag is not None:
        return ReferralDecision(status="held_for_review", reason=flag, key=key)
    deadline = referral.created_at + rule.within_days * DAY_MS
    qualified = (
        (activity.kyc_verified or not rule.require_kyc)
        and activity.deposited >= rule.min_deposit
        and activity.wagered >= rule.min_wagered
        and activity.qualified_at is not None
        and activity.qualified_at <= deadline
    )
    if not qualified:
        status: Literal["pending", "rejected"] = "rejected" if now > deadline else "pending"
        return ReferralDecision(status=status, reason="not_qualified", key=key)
    assert activity.qualified_at is not None
    release = activity.qualified_at + rule.hold_days * DAY_MS
    if now < release:
        return ReferralDecision(status="holding", key=key, release_at=release)
    if referrer_paid_in_period >= rule.cap_per_period:
        return ReferralDecision(status="held_for_review", reason="referrer_cap", key=key)
    return ReferralDecision(status="payable", key=key)


def referral_postings(
    partner: str, currency: str, rule: ReferralRule, referral: Referral, decision: ReferralDecision
) -> list[Posting]:
    """The reward postings of a payable referral (keys derived from the pair key)."""
    if decision.status != "payable":
        return []
    house = house_account(partner)
    rewards = (
        (referral.referrer, rule.reward_referrer, "referrer"),
        (referral.referee, rule.reward_referee, "referee"),
    )
    return [
        Posting(
            key=f"{decision.key}:{side}",
            kind="bonus",
            currency=currency,
            entries=(Entry(house, -amount), Entry(cash_account(partner, player), amount)),
        )
        for player, amount, side in rewards
        if amount
    ]
