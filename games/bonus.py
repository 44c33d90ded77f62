"""Bonus rules: templates, grants, wagering progress, release, free-spin awards, daily login.

Pure rules (BON-1 to BON-3). A grant snapshots its template, so later template edits never
change an existing grant. Wagering progress comes from settled-round events (stake x the game
category's contribution) and is idempotent per round id: a grant keeps the ids of its last
``RECENT_ROUNDS`` rounds, and a round settled no later than the newest one dropped from that
window counts as already applied (so a grant costs the same to read and write on its
10,000th round as on its first, and replaying round events gives the same progress). Bonus funds live in their own ledger
account; the spending order (cash first, then bonus) is defined in :mod:`games.wallet`. When
wagering completes, the bonus balance moves to cash up to ``max_cashout`` and any excess is
forfeited to the house; on expiry or forfeit the whole bonus balance goes back to the house.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from .ledger import Entry, Posting, bonus_account, cash_account, house_account
from .policy import Policy

__all__ = [
    "BonusError",
    "BonusGrant",
    "BonusTemplate",
    "RECENT_ROUNDS",
    "DailyLogin",
    "FreeSpinAward",
    "SettledRound",
    "applied",
    "apply_round",
    "check_bonus_bet",
    "claim_daily_login",
    "expire",
    "free_spin_award",
    "grant_bonus",
    "remember",
    "settle_grant_postings",
    "use_free_spin",
    "validate_template",
]

BP = 10_000

#: round ids a progress record (a bonus grant, a mission instance) keeps to recognise a
#: duplicate delivery; bounded, so a record costs the same on its 10,000th round as on its first
RECENT_ROUNDS = 32

#: ``(settled_at, round_id)`` of the last rounds a record applied, oldest first
Recent = tuple[tuple[int, str], ...]


class BonusError(ValueError):
    """A bonus rule was broken."""


class SettledRound(msgspec.Struct, frozen=True, kw_only=True):
    """The event every progress rule consumes: one settled round."""

    round_id: str
    player: str
    game_id: str
    category: str
    stake: int
    win: int
    settled_at: int
    features: int = 0


def applied(recent: Recent, horizon: int, event: SettledRound) -> bool:
    """True if a record with this window (``recent``, ``horizon``) counted ``event`` already,
    or takes it as counted: events of one player arrive in settlement order, so one settled no
    later than the newest id dropped from the window (``horizon``) came before it."""
    if event.settled_at <= horizon:
        return True
    rid = event.round_id
    return any(r == rid for _, r in recent)


def remember(recent: Recent, horizon: int, event: SettledRound) -> tuple[Recent, int]:
    """The window after applying ``event``: its id added, the oldest dropped past
    ``RECENT_ROUNDS`` (the horizon moves up to that one's settlement time)."""
    recent = (*recent, (event.settled_at, event.round_id))
    if len(recent) > RECENT_ROUNDS:
        horizon = max(horizon, recent[0][0])
        recent = recent[1:]
    return recent, horizon


class BonusTemplate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A versioned bonus offer.

    ``percent_bp`` and ``cap`` define a deposit match; ``amount`` a fixed bonus; ``free_spins``
    a number of spins on ``game_id`` at ``coin``. ``contribution_bp`` maps a game category to the
    share of a stake that counts towards wagering (missing categories count 0).
    """

    id: str
    version: str
    type: Literal["deposit_match", "no_deposit", "free_spins", "cashback"]
    percent_bp: int = 0
    cap: int = 0
    amount: int = 0
    free_spins: int = 0
    game_id: str | None = None
    coin: int = 0
    wagering_multiple: int = 0
    contribution_bp: dict[str, int] = {}
    max_bet_while_wagering: int | None = None
    expiry_ms: int
    max_cashout: int | None = None
    product_category: str = "casino"
    qualify_category: str = "casino"
    reward_free_use: bool = False
    #: the offer can be claimed or granted in ``[available_from, available_until)`` (epoch ms;
    #: None = unbounded): a promotion scheduled to start and end at future times
    available_from: int | None = None
    available_until: int | None = None

    def available(self, now: int) -> bool:
        """True while the offer may be claimed or granted."""
        return (self.available_from is None or now >= self.available_from) and (
            self.available_until is None or now < self.available_until
        )


class BonusGrant(msgspec.Struct, frozen=True, kw_only=True):
    """A bonus given to a player, with the template frozen at grant time (BON-3)."""

    grant_id: str
    player: str
    template: BonusTemplate
    amount: int
    wagering_required: int
    wagered: int = 0
    #: every round id applied, in grants written before ``recent``: read, never grown
    rounds: frozenset[str] = frozenset()
    #: the last rounds applied (`applied`, `remember`)
    recent: Recent = ()
    #: a round settled at or before this (ms) counts as applied: its id may have left ``recent``
    horizon: int = -1
    status: Literal["active", "completed", "expired", "forfeited"] = "active"
    granted_at: int
    expires_at: int


class FreeSpinAward(msgspec.Struct, frozen=True, kw_only=True):
    """Free spins to play on one game at a fixed coin; wins go to the bonus balance."""

    grant_id: str
    game_id: str
    coin: int
    remaining: int
    used: tuple[str, ...] = ()


def validate_template(policy: Policy, template: BonusTemplate) -> None:
    """Reject offers the jurisdiction forbids (BON-1 wagering cap, BON-2 mixed products).

    Raises:
        BonusError: Naming the broken rule.
    """
    cap = policy.max_wagering_multiple
    if cap is not None and template.wagering_multiple > cap:
        raise BonusError(f"wagering multiple above the policy cap of {cap}x")
    mixed = template.qualify_category != template.product_category
    if mixed and not policy.mixed_product_promotions and not template.reward_free_use:
        raise BonusError("qualifying and reward products differ (mixed-product promotion)")
    if any(not 0 <= v <= BP for v in template.contribution_bp.values()):
        raise BonusError("contributions are between 0 and 100%")
    if template.type == "free_spins" and (
        template.free_spins <= 0 or not template.game_id or template.coin <= 0
    ):
        raise BonusError("a free-spin offer needs a game, a coin and a spin count")


def grant_bonus(
    template: BonusTemplate, *, grant_id: str, player: str, now: int, deposit: int = 0
) -> BonusGrant:
    """Create a grant: deposit match (capped) or fixed amount; wagering = multiple x bonus."""
    if template.type == "deposit_match":
        amount = min(deposit * template.percent_bp // BP, template.cap)
    else:
        amount = template.amount
    return BonusGrant(
        grant_id=grant_id,
        player=player,
        template=template,
        amount=amount,
        wagering_required=amount * template.wagering_multiple,
        granted_at=now,
        expires_at=now + template.expiry_ms,
    )


def check_bonus_bet(grant: BonusGrant, stake: int) -> bool:
    """True if the stake respects the maximum bet while wagering."""
    limit = grant.template.max_bet_while_wagering
    return grant.status != "active" or limit is None or stake <= limit


def apply_round(grant: BonusGrant, event: SettledRound) -> BonusGrant:
    """Add a settled round's contribution; replaying a round id changes nothing (BON-3)."""
    if (
        grant.status != "active"
        or event.player != grant.player
        or event.round_id in grant.rounds
        or applied(grant.recent, grant.horizon, event)
    ):
        return grant
    if event.settled_at >= grant.expires_at:
        return expire(grant, event.settled_at)
    share = grant.template.contribution_bp.get(event.category, 0)
    wagered = grant.wagered + event.stake * share // BP
    done = wagered >= grant.wagering_required
    recent, horizon = remember(grant.recent, grant.horizon, event)
    return msgspec.structs.replace(
        grant,
        wagered=wagered,
        recent=recent,
        horizon=horizon,
        status="completed" if done else "active",
    )


def expire(grant: BonusGrant, now: int) -> BonusGrant:
    """Mark an active grant expired once its time is up."""
    if grant.status == "active" and now >= grant.expires_at:
        return msgspec.structs.replace(grant, status="expired")
    return grant


def settle_grant_postings(
    partner: str, currency: str, grant: BonusGrant, bonus_balance: int
) -> list[Posting]:
    """Postings that close a finished grant: release (capped) or forfeit the bonus balance.

    Args:
        bonus_balance: The player's bonus balance now (wins from bonus play included).
    """
    if grant.status == "active" or bonus_balance <= 0:
        return []
    bonus, cash, house = (
        bonus_account(partner, grant.player),
        cash_account(partner, grant.player),
        house_account(partner),
    )
    if grant.status == "completed":
        cap = grant.template.max_cashout
        released = bonus_balance if cap is None else min(bonus_balance, cap)
        postings = [_move(f"{grant.grant_id}:release", "bonus_release", currency, bonus, cash, released)]
        if bonus_balance > released:
            postings.append(
                _move(
                    f"{grant.grant_id}:excess",
                    "bonus_forfeit",
                    currency,
                    bonus,
                    house,
                    bonus_balance - released,
                )
            )
        return postings
    return [_move(f"{grant.grant_id}:forfeit", "bonus_forfeit", currency, bonus, house, bonus_balance)]


def _move(
    key: str,
    kind: Literal["bonus_release", "bonus_forfeit"],
    currency: str,
    source: str,
    target: str,
    amount: int,
) -> Posting:
    return Posting(
        key=key, kind=kind, currency=currency, entries=(Entry(source, -amount), Entry(target, amount))
    )


def free_spin_award(grant: BonusGrant) -> FreeSpinAward:
    """The spins of a free-spin grant."""
    t = grant.template
    if t.type != "free_spins" or t.game_id is None:
        raise BonusError("not a free-spin grant")
    return FreeSpinAward(grant_id=grant.grant_id, game_id=t.game_id, coin=t.coin, remaining=t.free_spins)


def use_free_spin(award: FreeSpinAward, round_id: str) -> FreeSpinAward:
    """Consume one spin for a round; the same round id never consumes twice.

    Raises:
        BonusError: If no spins are left.
    """
    if round_id in award.used:
        return award
    if award.remaining <= 0:
        raise BonusError("no free spins left")
    return msgspec.structs.replace(award, remaining=award.remaining - 1, used=(*award.used, round_id))


class DailyLogin(msgspec.Struct, frozen=True, kw_only=True):
    """Daily login rewards by streak day (the last entry repeats), days in ``timezone``."""

    rewards: tuple[int, ...]
    timezone: str = "UTC"


def _local_day(now_ms: int, tz: str) -> datetime:
    moment = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz))
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def claim_daily_login(
    config: DailyLogin, last_claim_at: int | None, streak: int, now: int
) -> tuple[int, int] | None:
    """Reward for logging in now: ``(amount, new streak)``, or None if already claimed today.

    Calendar days follow the configured time zone (DST-safe); missing a day resets the streak.
    """
    today = _local_day(now, config.timezone)
    if last_claim_at is None:
        streak = 1
    else:
        last = _local_day(last_claim_at, config.timezone)
        if last.date() == today.date():
            return None
        streak = streak + 1 if (today.date() - last.date()) == timedelta(days=1) else 1
    return config.rewards[min(streak, len(config.rewards)) - 1], streak
