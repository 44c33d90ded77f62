"""Bonuses: the daily login reward, claimable offers, free spins, deposit matches, wagering.

Model (docs/casino.md, "Bonuses"): a **locked bonus**. Bonus money sits in its own
ledger account (`<account>:bonus`) and is never staked: every stake is paid from cash.
Settled cash rounds count towards the wagering requirement (stake × the game category's
contribution, once per round id, BON-3). When the requirement is met, the bonus balance
moves to cash (up to the offer's `max_cashout`; any excess goes back to the house); when
the grant expires first, the whole bonus balance goes back to the house. One grant is
wagered at a time.

Keys: the daily reward `daily:<account>:<local date>` (once per calendar day of the
configured time zone), a grant `bonus:<grant id>` (once per player and offer version),
each free spin `fs:<grant id>:<n>`, the release `<grant id>:release` / `:excess`, the
forfeit `<grant id>:forfeit`, a deposit `deposit:<zone>:<payment reference>`.

Grants are documents `grant:<grant id>` (owner = account) whose status is `active`,
then `completed` / `expired` until the closing postings are made, then `closed`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from games.bonus import (
    BonusGrant,
    BonusTemplate,
    SettledRound,
    apply_round,
    claim_daily_login,
    expire,
    grant_bonus,
    settle_grant_postings,
)
from games.ledger import bonus_account, cash_account, house_account
from games.policy import Activity, check_deposit
from games.round import Bet
from games.slots import play_round
from persistence import Conflict, Document, PostingKind, RoundRecord, RoundStatus, TxnResult, transfer
from persistence.records import Entry
from persistence.staged import StagedDocuments
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from ..casino import RoundState
from ..domain import RoundSettled
from .service import Ctx, ZoneRewards, bonus_account_of, payments_account

if TYPE_CHECKING:
    from .service import Rewards

logger = logging.getLogger("croupier.rewards.bonus")

#: rounds read from the ledger to catch a grant up when it is loaded (a crash loses at most
#: the progress of the rounds since the last flush, about a second)
CATCH_UP_ROUNDS = 1000
_PAGE = 100
_enc = msgspec.msgpack.encode


class DailyState(msgspec.Struct, kw_only=True):
    last_claim_at: int | None = None
    streak: int = 0


def grant_id_of(template: BonusTemplate, account: str) -> str:
    return f"{template.id}@{template.version}/{account}"


class Bonuses:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        self.docs = svc.stores.bonuses
        #: grant documents: wagering progress is staged here and written by the next flush
        self.staged = StagedDocuments(self.docs, "bonus grants", on_conflict=self._written_elsewhere)
        #: active grants per account (loaded on first use, then caught up with the ledger)
        self._active: dict[str, list[BonusGrant]] = {}

    def handlers(self) -> dict[type, Any]:
        return {rm.BonusList: self.listing, rm.BonusClaim: self.claim}

    def forget(self, account: str) -> None:
        self._active.pop(account, None)
        self.staged.forget(account)

    def _written_elsewhere(self, doc: Document) -> None:
        """Another worker wrote one of the account's grants: read them again, and count the
        rounds since what it stored from the ledger (`_catch_up`)."""
        self._active.pop(doc.owner, None)

    # -- grants --------------------------------------------------------------------------

    async def _load_active(self, zr: ZoneRewards, account: str) -> list[BonusGrant]:
        """The account's active grants; on first use read from the store, then caught up
        with the rounds the ledger holds and the stored grant has not counted."""
        cached = self._active.get(account)
        if cached is None:
            docs = await self.docs.by_owner(account, status="active")
            cached = self._active.get(account)  # loaded by another task meanwhile
            if cached is None:
                cached = [msgspec.msgpack.decode(self.staged.adopt(d).body, type=BonusGrant) for d in docs]
                self._active[account] = cached
                if cached:
                    await self._catch_up(zr, account, cached)
                    cached = self._active.get(account, [])
        return cached

    async def _catch_up(self, zr: ZoneRewards, account: str, grants: list[BonusGrant]) -> None:
        """Apply the account's rounds that its stored grants have not counted: those settled
        after the last flush before a crash, or counted by a worker whose write lost a race.

        A casino round counts from its commit (`created_at`, when its stake was posted), a
        pick round from its settlement, as their `RoundSettled` events do; the newest
        `CATCH_UP_ROUNDS` rounds at most are read (the newest `_PAGE` first: that usually reaches
        back to the grant's window)."""
        floor = min(max(g.granted_at, g.horizon) for g in grants) + 1  # after the grant was made
        history = self.svc.stores.rounds.history
        rows = await history(account, limit=_PAGE)  # newest first: usually back to the floor
        if len(rows) == _PAGE and rows[-1].created_at >= floor:
            rows = await history(account, limit=CATCH_UP_ROUNDS)
            if len(rows) == CATCH_UP_ROUNDS and rows[-1].created_at >= floor:
                logger.warning("bonus: %s has more than %d rounds to catch up", account, CATCH_UP_ROUNDS)
        events = []
        for r in rows:
            slot = r.game_id in zr.casino.games
            at = r.created_at if slot else r.settled_at
            if r.bet <= 0 or at < floor or (not slot and r.status is RoundStatus.OPEN):
                continue
            events.append(
                SettledRound(
                    round_id=r.round_id,
                    player=account,
                    game_id=r.game_id,
                    category="slots" if slot else "minigames",
                    stake=r.bet,
                    win=r.win,
                    settled_at=at,
                )
            )
        events.sort(key=lambda e: (e.settled_at, e.round_id))
        for event in events:
            await self._update(zr, account, event.settled_at, event)

    def _doc(self, grant: BonusGrant, status: str | None = None) -> Document:
        return Document(
            id=f"grant:{grant.grant_id}", owner=grant.player, status=status or grant.status, body=_enc(grant)
        )

    async def _save(self, grant: BonusGrant, status: str | None = None) -> None:
        """Write a grant now (a new grant, a status or amount change: before money moves)."""
        try:
            await self.staged.put(self._doc(grant, status))
        except Conflict:
            self._active.pop(grant.player, None)
            raise

    async def _close(self, zr: ZoneRewards, grant: BonusGrant) -> None:
        """Post a finished grant's release or forfeit, then mark it closed."""
        account = grant.player
        bonus = bonus_account_of(account)
        balance = await self.svc.balance(zr, bonus)
        names = {
            cash_account(zr.zone, account): account,
            bonus_account(zr.zone, account): bonus,
            house_account(zr.zone): zr.house,
        }
        for posting in settle_grant_postings(zr.zone, zr.currency, grant, balance):
            entries = tuple(
                Entry(names[e.account], zr.currency, e.amount, PostingKind.TRANSFER) for e in posting.entries
            )
            await self.svc.move(zr, posting.key, entries, account)
        await self._save(grant, status="closed")

    async def _update(self, zr: ZoneRewards, account: str, now: int, event: SettledRound | None) -> None:
        """Apply a round (or the time, for expiry) to the account's active grants: progress is
        staged; a grant that completes or expires is written at once, then closed."""
        keep: list[BonusGrant] = []
        try:
            for grant in await self._load_active(zr, account):
                new = apply_round(grant, event) if event is not None else expire(grant, now)
                if new is grant:
                    keep.append(grant)
                elif new.status == "active":
                    self.staged.stage(self._doc(new))
                    keep.append(new)
                else:
                    await self._save(new)
                    await self._close(zr, new)
        except BaseException:  # a write failed (the store went away): read and catch up next time
            self._active.pop(account, None)
            raise
        if account in self._active:  # else dropped meanwhile: read again next time
            self._active[account] = keep

    async def on_round(self, zr: ZoneRewards, account: str, event: RoundSettled) -> None:
        if event.stake <= 0:
            return
        if not zr.grants_bonuses:
            return  # no source of bonus grants configured: no store read per round
        category = "slots" if event.game in zr.casino.games else "minigames"
        settled = SettledRound(
            round_id=event.event_id,
            player=account,
            game_id=event.game,
            category=category,
            stake=event.stake,
            win=event.win,
            settled_at=event.committed_at or event.at_ms,
        )
        await self._update(zr, account, settled.settled_at, settled)

    async def tick(self, now: int) -> None:
        """Expire grants of players seen on this worker (others expire on their next round)."""
        for account in list(self._active):
            zr = self.svc.zones.get(account.split(":", 1)[0])
            if zr is None or not any(now >= g.expires_at for g in self._active.get(account, [])):
                continue
            async with self.svc.locked(account):
                await self._update(zr, account, now, None)

    async def _grant(
        self, zr: ZoneRewards, template: BonusTemplate, account: str, now: int, *, deposit: int = 0
    ) -> BonusGrant:
        """Write a new active grant (once per player and offer version).

        Raises:
            RequestError: 416 `bonus_active` while another grant is wagered, 415 if claimed.
        """
        if await self._load_active(zr, account):
            raise RequestError(ErrorCode.BONUS_ACTIVE, "a bonus is still being wagered")
        grant = grant_bonus(
            template, grant_id=grant_id_of(template, account), player=account, now=now, deposit=deposit
        )
        try:
            await self._save(grant)
        except Conflict:
            raise RequestError(ErrorCode.BONUS_CLAIMED, f"{template.id} was already claimed") from None
        self._active.setdefault(account, []).append(grant)
        return grant

    async def _fund(self, zr: ZoneRewards, grant: BonusGrant, amount: int, reply: bytes = b"") -> TxnResult:
        entries = transfer(zr.house, bonus_account_of(grant.player), zr.currency, amount, PostingKind.BONUS)
        return await self.svc.move(zr, f"bonus:{grant.grant_id}", entries, grant.player, reply)

    # -- requests ------------------------------------------------------------------------

    def _offers(self, zr: ZoneRewards, now: int) -> list[BonusTemplate]:
        """The offers available now (scheduled promotions start and end by the clock)."""
        return [t for t in zr.cfg.bonuses if t.available(now)]

    async def listing(self, zr: ZoneRewards, ctx: Ctx, req: rm.BonusList) -> dict[str, Any]:
        now = self.svc.now()
        daily = zr.cfg.daily_login
        daily_info = None
        if daily is not None:
            state = await self._daily(ctx.account)
            nxt = claim_daily_login(daily, state.last_claim_at, state.streak, now)
            daily_info = {
                "available": nxt is not None,
                "streak": state.streak,
                "next_reward": None if nxt is None else nxt[0],
                "rewards": list(daily.rewards),
                "timezone": daily.timezone,
            }
        async with self.svc.locked(ctx.account):
            await self._load_active(zr, ctx.account)  # caught up with the ledger
        grants = []
        for stored in await self.docs.by_owner(ctx.account):
            if not stored.id.startswith("grant:"):
                continue
            doc = self.staged.latest(stored)  # with the progress not written yet
            g = msgspec.msgpack.decode(doc.body, type=BonusGrant)
            grants.append(
                {
                    "grant": g.grant_id,
                    "offer": g.template.id,
                    "status": doc.status,
                    "amount": g.amount,
                    "wagered": g.wagered,
                    "wagering_required": g.wagering_required,
                    "expires_at": g.expires_at,
                }
            )
        claimed = {g["offer"] for g in grants}
        offers = [
            {
                "bonus": t.id,
                "type": t.type,
                "amount": t.amount,
                "percent_bp": t.percent_bp,
                "cap": t.cap,
                "free_spins": t.free_spins,
                "game": t.game_id,
                "coin": t.coin,
                "wagering_multiple": t.wagering_multiple,
                "contribution_bp": t.contribution_bp,
                "expiry_ms": t.expiry_ms,
                "max_cashout": t.max_cashout,
                "available_until": t.available_until,
                "claimable": t.type in ("no_deposit", "free_spins") and t.id not in claimed,
            }
            for t in self._offers(zr, now)
        ]
        return {
            "currency": zr.currency,
            "bonus_balance": await self.svc.balance(zr, bonus_account_of(ctx.account)),
            "spending_order": "cash_only_locked_bonus",
            "daily": daily_info,
            "offers": offers,
            "grants": grants,
        }

    async def _daily(self, account: str) -> DailyState:
        doc = await self.docs.get(f"daily:{account}")
        return DailyState() if doc is None else msgspec.msgpack.decode(doc.body, type=DailyState)

    async def claim(self, zr: ZoneRewards, ctx: Ctx, req: rm.BonusClaim) -> dict[str, Any]:
        async with self.svc.locked(ctx.account):
            await self.svc.entry_allowed(zr, ctx.account, "bonus_claim")
            if req.bonus == "daily":
                return await self._claim_daily(zr, ctx)
            template = next((t for t in self._offers(zr, self.svc.now()) if t.id == req.bonus), None)
            if template is None or template.type not in ("no_deposit", "free_spins"):
                raise RequestError(ErrorCode.BONUS_NOT_FOUND, f"no claimable offer {req.bonus!r}")
            check = ["bonus_claim", req.bonus, ctx.key("bonus")]
            key = f"bonus:{grant_id_of(template, ctx.account)}"
            if await self.svc.stores.wallet.get_txn(key) is not None:
                try:
                    stored = await self.svc.stored(key, check)  # a retry of this request: its reply
                except RequestError:
                    raise RequestError(ErrorCode.BONUS_CLAIMED, f"{req.bonus} was already claimed") from None
                assert stored is not None
                return stored
            now = self.svc.now()
            doc = await self.staged.get(f"grant:{grant_id_of(template, ctx.account)}", ctx.account)
            if doc is not None:  # written by an earlier attempt whose money did not commit
                grant = msgspec.msgpack.decode(doc.body, type=BonusGrant)
            else:
                grant = await self._grant(zr, template, ctx.account, now)
            if template.type == "free_spins":
                return await self._free_spins(zr, ctx, grant, check)
            reply = {
                "bonus": template.id,
                "grant": grant.grant_id,
                "amount": grant.amount,
                "wagering_required": grant.wagering_required,
                "expires_at": grant.expires_at,
            }
            result = await self._fund(zr, grant, grant.amount, self.svc.encode_reply(check, reply))
            data = self.svc.replay(result, check)
            data["bonus_balance"] = result.balance(bonus_account_of(ctx.account), zr.currency)
            return data

    async def _claim_daily(self, zr: ZoneRewards, ctx: Ctx) -> dict[str, Any]:
        daily = zr.cfg.daily_login
        if daily is None:
            raise RequestError(ErrorCode.BONUS_NOT_FOUND, "this zone has no daily reward")
        now = self.svc.now()
        day = datetime.fromtimestamp(now / 1000, ZoneInfo(daily.timezone)).date().isoformat()
        key = f"daily:{ctx.account}:{day}"
        check = ["bonus_claim", "daily", ctx.key("bonus")]
        if await self.svc.stores.wallet.get_txn(key) is not None:
            try:
                stored = await self.svc.stored(key, check)
            except RequestError:
                raise RequestError(ErrorCode.BONUS_CLAIMED, "today's reward was already claimed") from None
            assert stored is not None
            return stored
        state = await self._daily(ctx.account)
        got = claim_daily_login(daily, state.last_claim_at, state.streak, now)
        if got is None:
            raise RequestError(ErrorCode.BONUS_CLAIMED, "today's reward was already claimed")
        amount, streak = got
        reply = {"bonus": "daily", "day": day, "amount": amount, "streak": streak}
        entries = transfer(zr.house, ctx.account, zr.currency, amount, PostingKind.BONUS)
        result = await self.svc.move(zr, key, entries, ctx.account, self.svc.encode_reply(check, reply))
        await self.docs.put(
            Document(
                id=f"daily:{ctx.account}",
                owner=ctx.account,
                body=_enc(DailyState(last_claim_at=now, streak=streak)),
            )
        )
        data = self.svc.replay(result, check)
        data["balance"] = result.balance(ctx.account, zr.currency)
        return data

    async def _free_spins(
        self, zr: ZoneRewards, ctx: Ctx, grant: BonusGrant, check: list[Any]
    ) -> dict[str, Any]:
        """Play the award's spins now, one round each (stake 0, wins to the bonus balance);
        the grant's wagering requirement becomes the multiple of the total won."""
        t = grant.template
        game = zr.casino.games.get(t.game_id or "")
        if game is None:
            raise RequestError(ErrorCode.GAME_NOT_FOUND, f"free-spin game {t.game_id!r} is not offered here")
        bonus = bonus_account_of(ctx.account)
        spins, total = await self._spin_rounds(
            zr, ctx.account, ctx.player.session_id, game.name, t.coin, t.free_spins, f"fs:{grant.grant_id}"
        )
        grant = msgspec.structs.replace(grant, amount=total, wagering_required=total * t.wagering_multiple)
        if grant.wagering_required == 0 and grant.status == "active":
            grant = msgspec.structs.replace(grant, status="completed")
        reply = {
            "bonus": t.id,
            "grant": grant.grant_id,
            "amount": total,
            "wagering_required": grant.wagering_required,
            "expires_at": grant.expires_at,
            "spins": spins,
        }
        result = await self.svc.move(
            zr, f"bonus:{grant.grant_id}", (), ctx.account, self.svc.encode_reply(check, reply)
        )
        await self._save(grant)
        active = [g for g in self._active.get(ctx.account, []) if g.grant_id != grant.grant_id]
        if grant.status == "active":
            active.append(grant)
        else:
            await self._close(zr, grant)
        self._active[ctx.account] = active
        data = self.svc.replay(result, check)
        data["bonus_balance"] = await self.svc.balance(zr, bonus)
        data["balance"] = await self.svc.balance(zr, ctx.account)
        return data

    async def _spin_rounds(
        self, zr: ZoneRewards, account: str, session: str, name: str, coin: int, count: int, prefix: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Play `count` free rounds of slot `name` at `coin`: each a settled round of stake 0
        whose win goes to the bonus balance, keyed `<prefix>:<n>` (a retry plays none twice)."""
        game = zr.casino.games[name]
        bonus = bonus_account_of(account)
        spins = []
        total = 0
        for n in range(count):
            key = f"{prefix}:{n}"
            done = await self.svc.stores.wallet.get_txn(key)
            if done is not None:
                spins.append(msgspec.msgpack.decode(done.reply, type=dict[str, Any]))
                total += spins[-1]["win"]
                continue
            outcome = play_round(game.slot, self.svc.rng, Bet(coin=coin))
            before = await self.svc.balance(zr, bonus)
            round_id = uuid.uuid4().hex
            rec = RoundRecord(
                round_id=round_id,
                user_id=account,
                game_id=game.name,
                game_version=outcome.game_version,
                math_version=f"{outcome.profile}:{outcome.math_hash}"[:64],
                currency=zr.currency,
                bet=0,
                win=outcome.win,
                status=RoundStatus.SETTLED,
                state=msgspec.msgpack.encode(RoundState(outcome=outcome, revealed=len(outcome.steps))),
                balance_before=before,
                balance_after=before + outcome.win,
                session_id=session,
                partner_id=zr.zone,
            )
            spin = {
                "round": round_id,
                "win": outcome.win,
                "steps": [msgspec.to_builtins(s) for s in outcome.steps],
            }
            entries = (
                transfer(zr.house, bonus, zr.currency, outcome.win, PostingKind.WIN) if outcome.win else ()
            )
            await self.svc.move(zr, key, entries, account, msgspec.msgpack.encode(spin), round=rec)
            spins.append(spin)
            total += outcome.win
        return spins, total

    async def award_spins(
        self, zr: ZoneRewards, account: str, session: str, count: int, key: str, now: int
    ) -> int:
        """Free spins won in a mini-game: played at once on the `minigame_bonus` offer's game
        and coin, the wins joining (or starting) a grant like a bonus prize. Returns the total."""
        template = zr.cfg.minigame_bonus
        if template is None or count <= 0 or template.game_id is None:
            return 0
        _, total = await self._spin_rounds(zr, account, session, template.game_id, template.coin, count, key)
        marker = await self.svc.move(zr, f"{key}:grant", (), account)
        if not marker.duplicate and total:
            await self._attach(zr, account, total, key, now)
        return total

    async def award(self, zr: ZoneRewards, account: str, amount: int, key: str, now: int) -> None:
        """Bonus money won in a mini-game (once per `key`; the caller holds the account lock).

        It joins the grant being wagered (amount and requirement grow by the prize, at that
        grant's multiple), or starts a grant on the zone's `minigame_bonus` terms.
        """
        template = zr.cfg.minigame_bonus
        if template is None or amount <= 0:
            return
        bonus = bonus_account_of(account)
        entries = transfer(zr.house, bonus, zr.currency, amount, PostingKind.BONUS)
        result = await self.svc.move(zr, key, entries, account)
        if not result.duplicate:  # else awarded by an earlier attempt
            await self._attach(zr, account, amount, key, now)

    async def _attach(self, zr: ZoneRewards, account: str, amount: int, key: str, now: int) -> None:
        """Book `amount`, already in the bonus balance, to the grant being wagered, or to a new
        grant on the `minigame_bonus` terms."""
        template = zr.cfg.minigame_bonus
        assert template is not None
        active = await self._load_active(zr, account)
        if active:
            grant = msgspec.structs.replace(
                active[0],
                amount=active[0].amount + amount,
                wagering_required=active[0].wagering_required + amount * active[0].template.wagering_multiple,
            )
            await self._save(grant)
            self._active[account] = [grant, *active[1:]]
            return
        grant = grant_bonus(
            template, grant_id=f"{template.id}@{template.version}/{key}", player=account, now=now
        )
        grant = msgspec.structs.replace(
            grant, amount=amount, wagering_required=amount * template.wagering_multiple
        )
        if grant.wagering_required == 0:
            grant = msgspec.structs.replace(grant, status="completed")
        await self._save(grant)
        if grant.status == "active":
            self._active.setdefault(account, []).append(grant)
        else:
            await self._close(zr, grant)

    # -- the payment integration -----------------------------------------------------------

    async def deposit(self, zone: str, account: str, amount: int, reference: str) -> dict[str, Any]:
        """Credit a deposit (or coin purchase) confirmed by the payment provider, and grant
        the zone's deposit-match offers the player has not had yet.

        Checks the deposit limits and exclusions first (RG-1, RG-3, RG-4). Idempotent per
        `reference`.

        Raises:
            RequestError: 404 `policy_refused` (limit, time-out, exclusion).
        """
        zr = self.svc.zones[zone]
        async with self.svc.locked(account):
            key = f"deposit:{zone}:{reference}"
            now = self.svc.now()
            if await self.svc.stores.wallet.get_txn(key) is None:
                state = await self.svc.responsible.state(zr, account)
                decision = check_deposit(zr.casino.policy, state, now, amount)
                if not decision.allowed:
                    raise RequestError(ErrorCode.POLICY_REFUSED, f"refused by policy: {decision.reason}")
            entries = transfer(payments_account(zone), account, zr.currency, amount, PostingKind.DEPOSIT)
            result = await self.svc.move(zr, key, entries, account)
            if result.duplicate:
                return {"deposit": reference, "duplicate": True}
            await self.svc.responsible.record_deposit(zr, account, Activity(at=now, deposit=amount))
            await self.svc.referrals.on_deposit(zr, account, amount, now)
            granted = []
            for template in self._offers(zr, now):
                if template.type != "deposit_match":
                    continue
                try:
                    grant = await self._grant(zr, template, account, now, deposit=amount)
                except RequestError:
                    continue  # already had it, or another bonus is being wagered
                if grant.amount > 0:
                    await self._fund(zr, grant, grant.amount)
                granted.append({"bonus": template.id, "grant": grant.grant_id, "amount": grant.amount})
            return {"deposit": reference, "amount": amount, "granted": granted}
