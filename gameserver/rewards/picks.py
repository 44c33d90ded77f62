"""Pick-a-box over the protocol: a multi-step round with decisions (INT-1, INT-2, INT-4).

Same round and ledger path as a spin: `pick_start` debits the stake and stores the round
record (status `open`) in ONE transaction, with the whole layout already drawn
(`games.minigames.pick.start_pick`: an unbiased shuffle), so the player's choices change
nothing but which prizes are shown — the expected value is exact and the same for every
strategy (`pick_expected_credits`). Each `pick_open` records the opened box in the round
record (idempotent by request id); the pick that ends the round credits the win and
settles the record in the same transaction, then `RoundSettled` is published.

INT-4: a round left without a decision for `pick_timeout_s` (default 24 h) is finished by
the documented default, `auto_pick`: the lowest-numbered unopened boxes are opened until
the round ends; the win is credited under `<round id>:auto`. The scheduler does this for
the rounds of players whose home is this worker: rounds started here, rounds of players who
logged in here, and, every `SWEEP_MS`, overdue rounds found in the store (a round abandoned
before a restart by a player who never comes back). The round record keeps the layout, so a
restart changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import msgspec

from games.catalog import read_catalog
from games.minigames import MiniGameError
from games.minigames.common import Prize, config_hash, outcome_for
from games.minigames.pick import (
    PickConfig,
    PickState,
    auto_pick,
    finish_pick,
    open_box,
    pick_expected_credits,
    start_pick,
    validate_pick,
)
from games.policy import Activity, check_bet, record
from games.round import RoundOutcome
from persistence import PostingKind, RoundChanged, RoundConflict, RoundRecord, RoundStatus, transfer
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from ..domain import RoundSettled
from .service import Ctx, ZoneRewards

if TYPE_CHECKING:
    from .service import Rewards

logger = logging.getLogger(__name__)

#: how often the scheduler looks in the store for overdue rounds it does not know of
SWEEP_MS = 60_000
#: overdue rounds read per query, and queries per sweep (a backlog is read over several sweeps)
SWEEP_PAGE = 100
SWEEP_PAGES = 10


class PickRoundState(msgspec.Struct, frozen=True, kw_only=True):
    """A pick round record's `state`: readable by the casino as its `RoundState`
    (`outcome` so far, `revealed`), plus the hidden layout and the last decision time."""

    outcome: RoundOutcome
    revealed: int
    pick: PickState
    user_id: int
    name: str
    last_at: int


def load_pick(zone: str, name: str, bonus_prizes: bool = False, free_spin_prizes: bool = False) -> PickConfig:
    where = f"casino.zones.{zone}.rewards.pick_games: {name!r}"
    try:
        config = msgspec.json.decode(read_catalog(name), type=PickConfig)
        validate_pick(config)
    except FileNotFoundError:
        raise ValueError(f"{where} is not in the catalogue") from None
    except (msgspec.ValidationError, MiniGameError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if config.cost <= 0:
        raise ValueError(f"{where}: a pick game needs a positive cost")
    allowed = {"credits", "end"} | ({"bonus"} if bonus_prizes else set())
    allowed |= {"free_spins"} if free_spin_prizes else set()
    if any(p.kind not in allowed for p in config.prizes):
        raise ValueError(
            f"{where}: bonus and free-spin prizes need rewards.minigame_bonus (free spins: with a "
            "game_id of the zone and one of its coin values)"
        )
    return config


def prize_total(config: PickConfig, state: PickState, kind: str) -> int:
    """Sum of the values of the opened prizes of `kind` (``bonus`` credits, ``free_spins``)."""
    prizes = [config.prizes[state.layout[b]] for b in state.opened]
    return sum(p.value for p in prizes if p.kind == kind)


def bonus_credits(config: PickConfig, state: PickState) -> int:
    """Bonus-money credits of the opened boxes (prizes of kind ``bonus``)."""
    return prize_total(config, state, "bonus")


def expected_bonus_credits(config: PickConfig, kind: str = "bonus") -> Fraction:
    """Exact expected value of the prizes of `kind` in a round (bonus credits, or free spins):
    they are reached exactly like cash prizes."""
    as_cash = msgspec.structs.replace(
        config,
        prizes=tuple(Prize(kind="credits", value=p.value) if p.kind == kind else p for p in config.prizes),
    )
    return pick_expected_credits(as_cash) - pick_expected_credits(config)


def _non_cash(zr: ZoneRewards) -> tuple[bool, bool]:
    """Whether the zone can pay bonus prizes, and free-spin prizes, of mini-games."""
    terms = zr.cfg.minigame_bonus
    if terms is None:
        return False, False
    game = zr.casino.games.get(terms.game_id or "")
    return True, game is not None and terms.coin in game.coin_values


def _partial(config: PickConfig, state: PickState) -> RoundOutcome:
    credits = sum(config.prizes[state.layout[b]].credits for b in state.opened)
    return outcome_for(
        game_id=config.id,
        version=config.version,
        config_hash=config_hash(config),
        kind="pick",
        coin=state.coin,
        cost=config.cost,
        credits=credits,
        steps=state.steps,
    )


class Picks:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        self.games: dict[str, dict[str, PickConfig]] = {
            z: {name: load_pick(z, name, *_non_cash(zr)) for name in zr.cfg.pick_games}
            for z, zr in svc.zones.items()
        }
        #: open pick rounds known here: round id -> (zone, account, decision due at, epoch ms);
        #: the scheduler reads a round from the store only once its decision is due
        self._open: dict[str, tuple[str, str, int]] = {}
        #: when the next store sweep is due (the first tick sweeps)
        self._sweep_at = 0
        #: rounds this worker finished by the default
        self.auto_finished = 0

    def handlers(self) -> dict[type, Any]:
        return {rm.PickInfo: self.info, rm.PickStart: self.start, rm.PickOpen: self.open}

    def _game(self, zr: ZoneRewards, name: str) -> PickConfig:
        config = self.games[zr.zone].get(name)
        if config is None:
            raise RequestError(ErrorCode.GAME_NOT_FOUND, f"no pick game {name!r} in this zone")
        return config

    async def joined(self, zr: ZoneRewards, account: str) -> None:
        """Login: remember the player's open pick rounds (the scheduler times them out)."""
        if not self.games[zr.zone]:
            return
        for rec in await self.svc.stores.rounds.open_rounds(account):
            if rec.game_id in self.games[zr.zone]:
                st = msgspec.msgpack.decode(rec.state, type=PickRoundState)
                self._due(zr, rec.round_id, account, st.last_at)

    @property
    def known(self) -> int:
        """Open rounds this worker's scheduler times out."""
        return len(self._open)

    def _due(self, zr: ZoneRewards, round_id: str, account: str, last_at: int) -> None:
        self._open[round_id] = (zr.zone, account, last_at + zr.cfg.pick_timeout_s * 1000)

    async def info(self, zr: ZoneRewards, ctx: Ctx, req: rm.PickInfo) -> dict[str, Any]:
        games = []
        for name, g in self.games[zr.zone].items():
            ev = pick_expected_credits(g)
            games.append(
                {
                    "game": name,
                    "version": g.version,
                    "boxes": len(g.prizes),
                    "picks": g.picks,
                    "cost": g.cost,
                    "prizes": [msgspec.to_builtins(p) for p in g.prizes],
                    "expected_credits": str(ev),
                    "expected_bonus_credits": str(expected_bonus_credits(g)),
                    "expected_free_spins": str(expected_bonus_credits(g, "free_spins")),
                    "rtp_exact": str(ev / g.cost),
                    "rtp": round(float(ev / g.cost) * 100, 4),
                }
            )
        return {
            "games": games,
            "coin_values": list(zr.casino.config.minigame_coin_values),
            "timeout_s": zr.cfg.pick_timeout_s,
        }

    async def start(self, zr: ZoneRewards, ctx: Ctx, req: rm.PickStart) -> dict[str, Any]:
        config = self._game(zr, req.game)
        coins = zr.casino.config.minigame_coin_values
        coin = req.coin if req.coin is not None else min(coins)
        if coin not in coins:
            raise RequestError(ErrorCode.BAD_BET, f"coin value {coin} is not offered")
        stake = config.cost * coin
        key = ctx.key("pick")
        check = ["pick_start", req.game, req.coin]
        async with self.svc.locked(ctx.account):
            done = await self.svc.stores.wallet.get_txn(key)
            if done is not None:
                data = self.svc.replay(done, check)
                data["balance"] = done.balance(ctx.account, zr.currency)
                return data
            now = self.svc.now()
            state = await self.svc.responsible.state(zr, ctx.account)
            decision = check_bet(zr.casino.policy, state, now, req.game, stake)
            if not decision.allowed:
                raise RequestError(ErrorCode.POLICY_REFUSED, f"refused by policy: {decision.reason}")
            for rec in await self.svc.stores.rounds.open_rounds(ctx.account):
                if rec.game_id == req.game:
                    raise RequestError(
                        ErrorCode.ROUND_IN_PROGRESS, f"round {rec.round_id} of {req.game} is in progress"
                    )
            pick = start_pick(config, self.svc.rng, coin)
            round_id = uuid.uuid4().hex
            before = await self.svc.balance(zr, ctx.account)
            outcome = _partial(config, pick)
            rec = RoundRecord(
                round_id=round_id,
                user_id=ctx.account,
                game_id=req.game,
                game_version=config.version,
                math_version=f"default:{outcome.math_hash}"[:64],
                currency=zr.currency,
                bet=stake,
                win=0,
                status=RoundStatus.OPEN,
                state=msgspec.msgpack.encode(
                    PickRoundState(
                        outcome=outcome,
                        revealed=0,
                        pick=pick,
                        user_id=ctx.player.user_id,
                        name=ctx.player.name,
                        last_at=now,
                    )
                ),
                balance_before=before,
                balance_after=before - stake,
                session_id=ctx.player.session_id,
                partner_id=zr.zone,
            )
            reply = {
                "round": round_id,
                "game": req.game,
                "coin": coin,
                "stake": stake,
                "boxes": len(config.prizes),
                "picks": config.picks,
                "opened": [],
                "complete": False,
                "decide_by": now + zr.cfg.pick_timeout_s * 1000,
            }
            entries = transfer(ctx.account, zr.house, zr.currency, stake, PostingKind.BET)
            result = await self.svc.move(
                zr, key, entries, ctx.account, self.svc.encode_reply(check, reply), round=rec
            )
            self._due(zr, round_id, ctx.account, now)
            wallet = self.svc.casino.wallets.get((zr.zone, ctx.player.user_id))
            if wallet is not None and wallet.account == ctx.account:
                wallet.open_rounds[round_id] = rec
                # the minimum cycle and the loss and wager limits count pick rounds too
                played = Activity(at=now, stake=stake)
                wallet.policy = (
                    record(wallet.policy, played, req.game)
                    if wallet.policy.limits
                    else msgspec.structs.replace(
                        wallet.policy, last_round_at={**wallet.policy.last_round_at, req.game: now}
                    )
                )
            data = self.svc.replay(result, check)
            data["balance"] = result.balance(ctx.account, zr.currency)
            return data

    async def open(self, zr: ZoneRewards, ctx: Ctx, req: rm.PickOpen) -> dict[str, Any]:
        key = ctx.key("pickopen")
        check = ["pick_open", req.round, req.box]
        async with self.svc.locked(ctx.account):
            done = await self.svc.stores.wallet.get_txn(key)
            if done is not None:
                data = self.svc.replay(done, check)
                data["balance"] = await self.svc.balance(zr, ctx.account)
                return data
            rec = await self.svc.stores.rounds.get_round(req.round)
            if rec is None or rec.user_id != ctx.account or rec.game_id not in self.games[zr.zone]:
                raise RequestError(ErrorCode.ROUND_NOT_FOUND, f"no pick round {req.round!r}")
            if rec.status is not RoundStatus.OPEN:
                raise RequestError(ErrorCode.ROUND_COMPLETE, f"round {rec.round_id} is complete")
            config = self.games[zr.zone][rec.game_id]
            st = msgspec.msgpack.decode(rec.state, type=PickRoundState)
            try:
                pick = open_box(config, st.pick, req.box)
            except MiniGameError as exc:
                raise RequestError(ErrorCode.BAD_REQUEST, str(exc)) from None
            data = await self._advance(zr, config, rec, st, pick, key, check)
            data["balance"] = await self.svc.balance(zr, ctx.account)
            return data

    async def _advance(
        self,
        zr: ZoneRewards,
        config: PickConfig,
        rec: RoundRecord,
        st: PickRoundState,
        pick: PickState,
        key: str,
        check: list[Any],
    ) -> dict[str, Any]:
        now = self.svc.now()
        account = rec.user_id
        if pick.done:
            outcome = finish_pick(config, pick)
            new = msgspec.structs.replace(
                rec,
                status=RoundStatus.SETTLED,
                win=outcome.win,
                balance_after=rec.balance_before - rec.bet + outcome.win,
            )
            entries = (
                transfer(zr.house, account, zr.currency, outcome.win, PostingKind.WIN) if outcome.win else ()
            )
        else:
            outcome = _partial(config, pick)
            new = rec
            entries = ()
        state = msgspec.structs.replace(st, outcome=outcome, revealed=len(pick.steps), pick=pick, last_at=now)
        new = msgspec.structs.replace(new, state=msgspec.msgpack.encode(state))
        step = pick.steps[-1]
        bonus = prize_total(config, pick, "bonus") * pick.coin if pick.done else 0
        free_spins = prize_total(config, pick, "free_spins") if pick.done else 0
        reply = {
            "round": rec.round_id,
            "game": rec.game_id,
            "bonus": bonus,
            "free_spins": free_spins,
            "box": step.box,
            "step": msgspec.to_builtins(step),
            "opened": list(pick.opened),
            "win": outcome.win,
            "complete": pick.done,
            "auto": len(pick.steps) - len(st.pick.steps) > 1 or key.endswith(":auto"),
            "decide_by": None if pick.done else now + zr.cfg.pick_timeout_s * 1000,
        }
        result = await self.svc.move(  # refused if another writer changed the round since `rec`
            zr,
            key,
            entries,
            account,
            self.svc.encode_reply(check, reply),
            round=new,
            round_base=rec.updated_at,
        )
        if bonus:
            await self.svc.bonuses.award(zr, account, bonus, f"{rec.round_id}:bonus", now)
        if free_spins:
            await self.svc.bonuses.award_spins(
                zr, account, rec.session_id, free_spins, f"{rec.round_id}:fs", now
            )
        wallet = self.svc.wallet_of_account(account)
        if pick.done:
            self._open.pop(rec.round_id, None)
            if wallet is not None:
                wallet.open_rounds.pop(rec.round_id, None)
                if wallet.policy.limits and outcome.win and not result.duplicate:
                    wallet.policy = record(wallet.policy, Activity(at=now, win=outcome.win))
            if not result.duplicate:
                self.svc.hub.events.publish(
                    RoundSettled(
                        event_id=rec.round_id,
                        zone=zr.zone,
                        at_ms=now,
                        user_id=st.user_id,
                        name=st.name,
                        game=rec.game_id,
                        currency=zr.currency,
                        stake=rec.bet,
                        win=outcome.win,
                        committed_at=result.committed_at,
                    )
                )
        else:
            self._due(zr, rec.round_id, account, now)
            if wallet is not None:
                wallet.open_rounds[rec.round_id] = new
        return self.svc.replay(result, check)

    async def tick(self, now: int) -> None:
        """INT-4: finish rounds whose decision is overdue by the documented default."""
        if now >= self._sweep_at:
            self._sweep_at = now + SWEEP_MS
            try:
                await self._sweep(now)
            except Exception as exc:  # the store is down: the rounds known here still go on
                logger.warning("pick rounds: overdue rounds not read (%s: %s)", type(exc).__name__, exc)
        for round_id, (zone, account, due) in list(self._open.items()):
            zr = self.svc.zones.get(zone)
            if zr is None or now < due:
                continue
            async with self.svc.locked(account):
                rec = await self.svc.stores.rounds.get_round(round_id)
                if rec is None or rec.status is not RoundStatus.OPEN:
                    self._open.pop(round_id, None)
                    continue
                st = msgspec.msgpack.decode(rec.state, type=PickRoundState)
                if not self.svc.hub.router.owns_user(zone, st.user_id):
                    self._open.pop(round_id, None)  # the player's home moved: that worker finishes it
                    continue
                if now < st.last_at + zr.cfg.pick_timeout_s * 1000:
                    self._due(zr, round_id, account, st.last_at)  # decided since (another worker)
                    continue
                config = self.games[zone][rec.game_id]
                pick = auto_pick(config, st.pick)
                try:
                    await self._advance(
                        zr, config, rec, st, pick, f"{round_id}:auto", ["pick_auto", round_id]
                    )
                    self.auto_finished += 1
                except RoundChanged:
                    continue  # a decision came meanwhile (another worker): read it again next tick
                except RoundConflict:
                    self._open.pop(round_id, None)  # settled meanwhile

    async def _sweep(self, now: int) -> None:
        """Remember the overdue rounds in the store of players whose home is this worker."""
        router = self.svc.hub.router
        for zone, games in self.games.items():
            zr = self.svc.zones.get(zone)
            if zr is None or not games:
                continue
            before = now - zr.cfg.pick_timeout_s * 1000
            for game in games:
                after: tuple[int, str] | None = None
                for _ in range(SWEEP_PAGES):
                    page = await self.svc.stores.rounds.stale_open_rounds(
                        game, before, after=after, limit=SWEEP_PAGE
                    )
                    for rec in page:
                        if rec.partner_id != zone:  # a game of the same name in another zone
                            continue
                        st = msgspec.msgpack.decode(rec.state, type=PickRoundState)
                        if rec.round_id not in self._open and router.owns_user(zone, st.user_id):
                            self._due(zr, rec.round_id, rec.user_id, st.last_at)
                    if len(page) < SWEEP_PAGE:
                        break
                    after = (page[-1].updated_at, page[-1].round_id)
