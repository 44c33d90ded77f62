"""Wire messages of the rewards service: lotteries, bonuses, missions, referrals and the
player's responsible-gaming settings (docs/protocol.md, "Casino": "Rewards").

Every request is listed in `ClientMessage` (protocol/messages.py). Money requests carry
an optional `key` that outlives the session, like `spin`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .msgbase import Request

__all__ = [
    "BonusClaim",
    "BonusList",
    "LotteryBuy",
    "LotteryList",
    "LotteryResults",
    "LotteryVerify",
    "MissionList",
    "MissionProgress",
    "PickInfo",
    "PickOpen",
    "PickStart",
    "ReferralApply",
    "ReferralCode",
    "RgConfirm",
    "RgExclude",
    "RgLimit",
    "RgReactivate",
    "RgSession",
    "RgStatus",
    "RgTimeout",
    "REWARDS_MESSAGES",
]

Ref = Annotated[str, Meta(min_length=1, max_length=64)]
ClientKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Numbers = Annotated[list[Annotated[int, Meta(ge=1, le=1000)]], Meta(min_length=1, max_length=20)]
Seconds = Annotated[int, Meta(ge=1, le=100 * 365 * 86_400)]
Amount = Annotated[int, Meta(ge=0, le=2**53)]

# -- lotteries -----------------------------------------------------------------------------


class LotteryList(Request, tag="lottery_list", frozen=True):
    """The zone's lotteries: the draw on sale (with its seed commitment) and the last draw."""


class LotteryBuy(Request, tag="lottery_buy", frozen=True):
    """Buy tickets for the draw on sale of `lottery`: one entry of `tickets` per ticket."""

    lottery: Ref
    tickets: Annotated[list[Numbers], Meta(min_length=1, max_length=100)]
    key: ClientKey | None = None


class LotteryResults(Request, tag="lottery_results", frozen=True):
    """A completed draw's numbers and prizes, with the player's tickets; `draw` null = the
    last completed draw of `lottery`."""

    lottery: Ref
    draw: Ref | None = None


class LotteryVerify(Request, tag="lottery_verify", frozen=True):
    """Everything needed to check a draw independently: commitment, revealed seed, tickets."""

    draw: Ref


# -- bonuses -------------------------------------------------------------------------------


class BonusList(Request, tag="bonus_list", frozen=True):
    """The daily login reward, claimable offers, the player's grants and bonus balance."""


class BonusClaim(Request, tag="bonus_claim", frozen=True):
    """Claim `bonus`: `daily` (the daily login reward) or an offer id from `bonus_list`."""

    bonus: Ref
    key: ClientKey | None = None


# -- missions ------------------------------------------------------------------------------


class MissionList(Request, tag="mission_list", frozen=True):
    """The zone's active missions with the player's progress in the current period."""


class MissionProgress(Request, tag="mission_progress", frozen=True):
    """One mission's progress (current period), reward status and rules."""

    mission: Ref


# -- referrals -----------------------------------------------------------------------------


class ReferralCode(Request, tag="referral_code", frozen=True):
    """The player's referral code and the status of the players they referred."""


class ReferralApply(Request, tag="referral_apply", frozen=True):
    """Record that the player was referred by the owner of `code` (once per player)."""

    code: Annotated[str, Meta(min_length=4, max_length=32)]


# -- responsible gaming --------------------------------------------------------------------


class RgStatus(Request, tag="rg_status", frozen=True):
    """The player's limits (in force and pending), time-out, self-exclusion and activity."""


class RgLimit(Request, tag="rg_limit", frozen=True):
    """Set, lower, raise or (`amount` null) remove a deposit, loss or wager limit.

    A decrease applies at once; an increase or a removal after the policy's cooling-off
    period (and, if the policy says so, an `rg_confirm` after it).
    """

    kind: Literal["deposit", "loss", "wager"]
    period: Literal["day", "week", "month"]
    amount: Amount | None = None


class RgConfirm(Request, tag="rg_confirm", frozen=True):
    """Positive re-confirmation of a pending limit increase once it has cooled off."""

    kind: Literal["deposit", "loss", "wager"]
    period: Literal["day", "week", "month"]


class RgTimeout(Request, tag="rg_timeout", frozen=True):
    """Take a time-out (cool-off) of one of the offered durations, starting now."""

    seconds: Seconds


class RgExclude(Request, tag="rg_exclude", frozen=True):
    """Self-exclude now for `seconds` (at least the policy minimum); needs `confirm: true`."""

    seconds: Seconds
    confirm: bool = False


class RgSession(Request, tag="rg_session", frozen=True):
    """The player's session time limit and reality-check interval (null = none), from now on.

    After `limit_s` of a session (from login) bets are refused until the next login; every
    `reality_check_s` a `reality_check` event shows the elapsed time and the net position.
    """

    limit_s: Seconds | None = None
    reality_check_s: Annotated[int, Meta(ge=60, le=86_400)] | None = None


class RgReactivate(Request, tag="rg_reactivate", frozen=True):
    """Re-activate the account after an expired self-exclusion (never automatic)."""


# -- pick-a-box ----------------------------------------------------------------------------


class PickInfo(Request, tag="pick_info", frozen=True):
    """The zone's pick-a-box games: boxes, picks, prizes, cost and exact expected return."""


class PickStart(Request, tag="pick_start", frozen=True):
    """Buy a pick-a-box round: the stake is debited and the whole layout drawn and stored."""

    game: Ref
    coin: Annotated[int, Meta(ge=1, le=2**53)] | None = None
    key: ClientKey | None = None


class PickOpen(Request, tag="pick_open", frozen=True):
    """Open box `box` (0-based) of an open pick round; the last pick settles the round."""

    round: Ref
    box: Annotated[int, Meta(ge=0, le=1000)]


#: Every rewards request, for the `ClientMessage` union and the service's request types.
REWARDS_MESSAGES: tuple[type[Request], ...] = (
    LotteryList,
    LotteryBuy,
    LotteryResults,
    LotteryVerify,
    BonusList,
    BonusClaim,
    MissionList,
    MissionProgress,
    ReferralCode,
    ReferralApply,
    RgStatus,
    RgLimit,
    RgConfirm,
    RgTimeout,
    RgExclude,
    RgReactivate,
    RgSession,
    PickInfo,
    PickStart,
    PickOpen,
)
