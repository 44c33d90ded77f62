"""Bonus, mission and referral rules (BON-1 to BON-3, TRN-5, REF-1, REF-2)."""

from __future__ import annotations

import functools

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from games.bonus import (
    RECENT_ROUNDS,
    BonusError,
    BonusGrant,
    BonusTemplate,
    DailyLogin,
    SettledRound,
    apply_round,
    check_bonus_bet,
    claim_daily_login,
    expire,
    free_spin_award,
    grant_bonus,
    settle_grant_postings,
    use_free_spin,
    validate_template,
)
from games.ledger import Ledger, bonus_account, cash_account
from games.missions import Mission, MissionProgress, apply_event
from games.policy import DAY, Policy, gb_policy
from games.referral import (
    AccountSignals,
    RefereeActivity,
    Referral,
    ReferralRule,
    evaluate_referral,
    referral_postings,
)
from games.wallet import Wallet

T0 = 1_700_000_000_000
MATCH = BonusTemplate(
    id="welcome",
    version="3",
    type="deposit_match",
    percent_bp=10_000,
    cap=10_000,
    wagering_multiple=10,
    contribution_bp={"slots": 10_000, "table": 1_000},
    max_bet_while_wagering=500,
    expiry_ms=7 * DAY,
    max_cashout=20_000,
)


def _round(
    i: int,
    stake: int,
    category: str = "slots",
    at: int = T0 + 1,
    player: str = "ann",
    win: int = 0,
    features: int = 0,
) -> SettledRound:
    return SettledRound(
        round_id=f"r{i}",
        player=player,
        game_id="g",
        category=category,
        stake=stake,
        settled_at=at,
        win=win,
        features=features,
    )


def test_wagering_cap_and_mixed_products_follow_policy() -> None:
    """GB: wagering above 10x and mixed-product offers are refused (BON-1, BON-2)."""
    validate_template(gb_policy(), MATCH)
    with pytest.raises(BonusError, match="10x"):
        validate_template(gb_policy(), msgspec.structs.replace(MATCH, wagering_multiple=35))
    mixed = msgspec.structs.replace(MATCH, qualify_category="betting")
    with pytest.raises(BonusError, match="mixed"):
        validate_template(gb_policy(), mixed)
    validate_template(gb_policy(), msgspec.structs.replace(mixed, reward_free_use=True))
    validate_template(Policy(), msgspec.structs.replace(MATCH, wagering_multiple=35))


def test_deposit_match_is_capped_and_snapshots_its_terms() -> None:
    """100% up to 100.00; later template changes do not touch an existing grant (BON-3)."""
    grant = grant_bonus(MATCH, grant_id="g1", player="ann", now=T0, deposit=25_000)
    assert (grant.amount, grant.wagering_required) == (10_000, 100_000)
    assert grant.template == MATCH and grant.template.version == "3"


def test_wagering_progress_uses_contributions_and_is_idempotent() -> None:
    """Slots count 100%, tables 10%; replaying a round changes nothing; completion at the target."""
    grant = grant_bonus(MATCH, grant_id="g1", player="ann", now=T0, deposit=1_000)
    grant = apply_round(grant, _round(1, 5_000))
    grant = apply_round(grant, _round(2, 10_000, "table"))
    assert apply_round(grant, _round(1, 5_000)) == grant
    assert grant.wagered == 6_000 and grant.status == "active"
    grant = apply_round(grant, _round(3, 4_000))
    assert grant.status == "completed"
    assert apply_round(grant, _round(4, 9)).wagered == 10_000


@settings(max_examples=30, deadline=None)
@given(
    stakes=st.lists(st.tuples(st.integers(1, 999), st.sampled_from(["slots", "table", "live"])), max_size=30),
    data=st.data(),
)
def test_progress_replay_is_order_and_duplicate_independent(
    stakes: list[tuple[int, str]], data: st.DataObject
) -> None:
    """Replaying the round events in any order, with duplicates, gives the same progress (BON-3)."""
    events = [_round(i, s, c) for i, (s, c) in enumerate(stakes)]
    shuffled = data.draw(st.permutations(events + events[: len(events) // 2]))
    start = grant_bonus(MATCH, grant_id="g", player="ann", now=T0, deposit=100_000)
    once = start
    for e in events:
        once = apply_round(once, e)
    again = start
    for e in shuffled:
        again = apply_round(again, e)
    assert (again.wagered, again.status) == (once.wagered, once.status)


@functools.cache
def _wagered_2000() -> tuple[BonusGrant, tuple[SettledRound, ...], tuple[int, int]]:
    """A grant after 2,000 rounds (3 settled in each ms: ties), the rounds, and the size of
    its encoding after 100 and after 2,000 rounds."""
    template = msgspec.structs.replace(MATCH, max_bet_while_wagering=None, expiry_ms=30 * DAY)
    grant = grant_bonus(template, grant_id="g", player="ann", now=T0, deposit=10**9)
    rounds = tuple(
        msgspec.structs.replace(_round(i, 7, at=T0 + 1 + i // 3), round_id=f"{i:032x}") for i in range(2_000)
    )
    sizes = []
    for i, e in enumerate(rounds):
        grant = apply_round(grant, e)
        if i in (99, 1_999):
            sizes.append(len(msgspec.msgpack.encode(grant)))
    return grant, rounds, (sizes[0], sizes[1])


def test_a_grant_does_not_grow_with_the_rounds_wagered() -> None:
    """The grant keeps the last RECENT_ROUNDS ids: its document is as large after 2,000
    rounds as after 100, so a round costs the same to apply and write."""
    grant, _, (after_100, after_2000) = _wagered_2000()
    assert grant.wagered == 2_000 * 7 and len(grant.recent) == RECENT_ROUNDS
    assert after_100 == after_2000


@settings(max_examples=30, deadline=None)
@given(replayed=st.lists(st.integers(0, 1_999), max_size=50))
def test_a_replay_of_any_applied_round_counts_nothing(replayed: list[int]) -> None:
    """Any of the 2,000 rounds delivered again, recent or long past, changes nothing (BON-3)."""
    grant, rounds, _ = _wagered_2000()
    for i in replayed:
        assert apply_round(grant, rounds[i]) == grant


def test_max_bet_and_expiry() -> None:
    """Bets above the wagering max bet are flagged; an expired grant stops progressing."""
    grant = grant_bonus(MATCH, grant_id="g1", player="ann", now=T0, deposit=1_000)
    assert check_bonus_bet(grant, 500) and not check_bonus_bet(grant, 501)
    late = apply_round(grant, _round(1, 100, at=T0 + 7 * DAY))
    assert late.status == "expired" and late.wagered == 0
    assert expire(grant, T0 + 7 * DAY).status == "expired"


def test_release_is_capped_and_forfeit_returns_to_house() -> None:
    """Completed: bonus moves to cash up to max cash-out, the excess to the house; expired: all forfeited."""
    wallet = Wallet(Ledger(), "acme", "EUR")
    wallet.credit_bonus("ann", "g1", 25_000)
    grant = msgspec.structs.replace(
        grant_bonus(MATCH, grant_id="g1", player="ann", now=T0, deposit=1), status="completed"
    )
    for posting in settle_grant_postings("acme", "EUR", grant, 25_000):
        wallet.ledger.post(posting)
    assert wallet.funds("ann").cash == 20_000 and wallet.funds("ann").bonus == 0
    wallet.credit_bonus("bob", "g2", 700)
    expired = msgspec.structs.replace(grant, grant_id="g2", player="bob", status="expired")
    for posting in settle_grant_postings("acme", "EUR", expired, 700):
        wallet.ledger.post(posting)
    assert wallet.funds("bob").total == 0
    assert wallet.ledger.verify() == []
    assert wallet.ledger.balance(bonus_account("acme", "ann"), "EUR") == 0
    assert wallet.ledger.balance(cash_account("acme", "bob"), "EUR") == 0


def test_free_spin_awards_count_down_once_per_round() -> None:
    """A free-spin grant gives N spins; a retried round does not consume a second spin."""
    template = BonusTemplate(
        id="fs", version="1", type="free_spins", free_spins=2, game_id="demo_orchard", coin=10, expiry_ms=DAY
    )
    validate_template(gb_policy(), template)
    award = free_spin_award(grant_bonus(template, grant_id="f1", player="ann", now=T0))
    award = use_free_spin(use_free_spin(award, "r1"), "r1")
    assert award.remaining == 1
    award = use_free_spin(award, "r2")
    with pytest.raises(BonusError):
        use_free_spin(award, "r3")


def test_daily_login_streak_in_local_days_across_dst() -> None:
    """One claim per local calendar day; consecutive days build a streak; a gap resets it."""
    config = DailyLogin(rewards=(10, 20, 50), timezone="Europe/London")
    march_30_2025_0030 = 1_743_294_600_000  # the day UK clocks go forward
    first = claim_daily_login(config, None, 0, march_30_2025_0030)
    assert first == (10, 1)
    assert claim_daily_login(config, march_30_2025_0030, 1, march_30_2025_0030 + 20 * 3_600_000) is None
    next_day = march_30_2025_0030 + 24 * 3_600_000
    assert claim_daily_login(config, march_30_2025_0030, 1, next_day) == (20, 2)
    assert claim_daily_login(config, next_day, 2, next_day + DAY) == (50, 3)
    assert claim_daily_login(config, next_day, 5, next_day + DAY) == (50, 6)
    assert claim_daily_login(config, next_day, 3, next_day + 3 * DAY) == (10, 1)


MISSION = Mission(
    id="spin50", metric="wagered", target=1_000, reward=200, starts_at=T0, ends_at=T0 + 7 * DAY, period_ms=DAY
)


def test_mission_rewards_once_per_period_from_settled_rounds() -> None:
    """Progress is idempotent per round; the reward key appears exactly once per period (TRN-5)."""
    progress: MissionProgress | None = None
    keys = []
    for i, stake in enumerate([400, 400, 400, 400]):
        for _ in range(2):  # every event delivered twice
            progress, key = apply_event(MISSION, progress, _round(i, stake))
            keys.append(key)
    assert [k for k in keys if k] == ["mission:spin50:ann:0"]
    assert progress is not None and progress.value == 1_600
    progress, key = apply_event(MISSION, None, _round(9, 1_000, at=T0 + DAY + 5))
    assert key == "mission:spin50:ann:1"
    assert apply_event(MISSION, None, _round(10, 5_000, at=T0 + 8 * DAY)) == (None, None)


@pytest.mark.parametrize(
    ("metric", "event", "amount"),
    [
        ("rounds", {"stake": 5}, 1),
        ("won", {"stake": 5, "win": 70}, 70),
        ("feature_triggers", {"stake": 5, "features": 2}, 2),
        ("big_wins", {"stake": 5, "win": 50}, 1),
    ],
)
def test_mission_metrics(metric: str, event: dict[str, int], amount: int) -> None:
    """Each metric reads the right field of the settled round."""
    mission = msgspec.structs.replace(MISSION, metric=metric, target=10**9)
    progress, _ = apply_event(
        mission, None, _round(1, event["stake"], win=event.get("win", 0), features=event.get("features", 0))
    )
    assert progress is not None and progress.value == amount


RULE = ReferralRule(
    min_deposit=1_000,
    min_wagered=5_000,
    within_days=30,
    hold_days=7,
    reward_referrer=500,
    reward_referee=200,
    cap_per_period=2,
)
REF = Referral(referrer="ann", referee="bob", created_at=T0)
QUALIFIED = RefereeActivity(kyc_verified=True, deposited=1_000, wagered=5_000, qualified_at=T0 + 3 * DAY)
CLEAN = (
    AccountSignals(devices=frozenset({"d1"}), email="ann@x.io"),
    AccountSignals(devices=frozenset({"d2"}), email="bob@x.io"),
)


def _decide(activity: RefereeActivity = QUALIFIED, now: int = T0 + 11 * DAY, **kw: object) -> str:
    args: dict[str, object] = {
        "signals": CLEAN,
        "referred_by": {},
        "paid_keys": frozenset(),
        "referrer_paid_in_period": 0,
    }
    args.update(kw)
    decision = evaluate_referral(RULE, REF, activity, now=now, **args)  # type: ignore[arg-type]
    return decision.status if decision.reason is None else f"{decision.status}:{decision.reason}"


def test_referral_needs_qualifying_activity_and_hold() -> None:
    """No reward on sign-up alone; after qualifying, a hold; then payable once (REF-1)."""
    assert _decide(RefereeActivity(), now=T0 + DAY) == "pending:not_qualified"
    assert (
        _decide(RefereeActivity(kyc_verified=True, deposited=5_000), now=T0 + 31 * DAY)
        == "rejected:not_qualified"
    )
    assert _decide(now=T0 + 9 * DAY) == "holding"
    assert _decide() == "payable"
    assert _decide(paid_keys=frozenset({"referral:ann:bob"})) == "paid"


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        (
            (AccountSignals(devices=frozenset({"d1"})), AccountSignals(devices=frozenset({"d1"}))),
            "shared_device",
        ),
        (
            (
                AccountSignals(payment_instruments=frozenset({"card9"})),
                AccountSignals(payment_instruments=frozenset({"card9"})),
            ),
            "shared_payment",
        ),
        ((AccountSignals(ips={"1.2.3.4": T0}), AccountSignals(ips={"1.2.3.4": T0 + 3_600_000})), "shared_ip"),
        (
            (AccountSignals(email="Ann.Smith+x@mail.io"), AccountSignals(email="annsmith@mail.io")),
            "email_pattern",
        ),
    ],
)
def test_linked_accounts_are_held_for_review(
    signals: tuple[AccountSignals, AccountSignals], reason: str
) -> None:
    """Shared device, payment, recent IP or e-mail pattern hold the reward for review (REF-2)."""
    assert _decide(signals=signals) == f"held_for_review:{reason}"


def test_rings_caps_and_exclusions() -> None:
    """A -> B -> C -> A is held; per-referrer cap holds; excluded players get nothing (REF-2)."""
    assert _decide(referred_by={"ann": "cid", "cid": "bob"}) == "held_for_review:referral_ring"
    assert _decide(referrer_paid_in_period=2) == "held_for_review:referrer_cap"
    excluded = (CLEAN[0], msgspec.structs.replace(CLEAN[1], excluded=True))
    assert _decide(signals=excluded) == "rejected:excluded"
    self_ref = Referral(referrer="ann", referee="ann", created_at=T0)
    assert (
        evaluate_referral(RULE, self_ref, QUALIFIED, CLEAN, {}, frozenset(), 0, T0 + 11 * DAY).reason
        == "self_referral"
    )


def test_referral_reward_posts_once_per_pair() -> None:
    """The payable decision posts both rewards under pair keys; replaying posts nothing."""
    decision = evaluate_referral(RULE, REF, QUALIFIED, CLEAN, {}, frozenset(), 0, T0 + 11 * DAY)
    ledger = Ledger()
    for _ in range(3):
        for posting in referral_postings("acme", "EUR", RULE, REF, decision):
            ledger.post(posting)
    assert len(ledger.postings) == 2
    assert ledger.balance(cash_account("acme", "ann"), "EUR") == 500
    assert ledger.balance(cash_account("acme", "bob"), "EUR") == 200
