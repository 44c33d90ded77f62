"""Casino requests on a player's session: spins, multi-step rounds, balance, history.

Money path of a `spin` (docs/protocol.md, "Casino"):

1. validate the bet (game, coin value, lines), the responsible-gaming policy and the
   in-memory balance (an early refusal only: the database is the authority);
2. draw the whole round first (`games.slots.play_round` with the injected RNG);
3. settle it as ONE durable transaction: bet debit, win credit, the round record (its
   state holds the whole outcome) and the encoded reply, under an idempotency key made
   of the zone, the user and the client's request id;
4. reply `ok` only after `stores.commit` returned, to the player's current connection.

A retried request (same id) gets the stored reply back and posts nothing. A multi-step
round (free spins) is credited in full with its first request; `round_continue` reveals
the next step from the stored outcome and records how far the player has seen, so it
continues after a reconnect or a restart and is never drawn again.

Nothing here blocks the event loop: every request runs as a task; replies are sent by
request id, so they may arrive in any order relative to other replies.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import msgspec

from games.catalog import read_catalog
from games.minigames import (
    MiniGameError,
    ScratchConfig,
    WheelConfig,
    play_scratch,
    scratch_expected_credits,
    spin_wheel,
    wheel_rtp,
)
from games.minigames.scratch import validate_scratch
from games.minigames.wheel import validate_wheel
from games.policy import DAY, Activity, PlayerState, Policy, check_bet, check_game_rtp, gb_policy, record
from games.rng import Rng, SystemRng
from games.round import Bet, RoundOutcome, reveal
from games.slots import (
    InvalidBet,
    RoundTooLong,
    SlotGame,
    SlotReport,
    compile_game,
    decode_config,
    exact_report,
    play_round,
)
from games.slots.spin import check_bet as check_slot_bet
from persistence import (
    InsufficientFunds,
    PostingKind,
    RoundChanged,
    RoundConflict,
    RoundRecord,
    RoundStatus,
    StoreBusy,
    StoreClosed,
    Stores,
    StoreUnavailable,
    Txn,
    TxnResult,
    spin_txn,
    transfer,
)
from protocol import messages as m
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from rooms.roles import Role

from .config import CasinoZone, Config
from .domain import RoundSettled
from .metrics import GameStats

if TYPE_CHECKING:
    from .hub import Hub
    from .player import Player

logger = logging.getLogger("croupier.casino")

#: Request types handled here (the hub sends them to `Casino.handle`).
CASINO_TYPES: frozenset[type] = frozenset(
    {m.Spin, m.RoundContinue, m.GameInfo, m.Balance, m.History, m.MinigamePlay}
)

_enc = msgspec.msgpack.Encoder()
_dec_reply = msgspec.msgpack.Decoder(dict[str, Any])
_MAX_KEY = 128


class RoundState(msgspec.Struct, frozen=True, kw_only=True):
    """What a round record's `state` holds: the whole outcome and how much was revealed."""

    outcome: RoundOutcome
    revealed: int


_dec_state = msgspec.msgpack.Decoder(RoundState)


def txn_key(kind: str, account: str, session: str, request_id: int | str) -> str:
    """The idempotency key of a money request: the account (zone and user), the session
    (kept across resumes: clients number requests per session) and the request id."""
    key = f"{kind}:{account}:{session}:{request_id}"
    if len(key) > _MAX_KEY:
        key = f"{kind}:h:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def account_id(zone: str, user_id: int, guest_run: str | None = None) -> str:
    """The player's wallet account (and round owner) in the store.

    Guest ids are handed out again after a restart, so a guest's account also names its
    session (`guest_run`: the session id, which moves with the session in a handover, a
    ring change and a restore after a crash): a guest never inherits an earlier guest's
    wallet, and keeps its own as long as its session lives.
    """
    if guest_run is not None:
        return f"{zone}:guest:{user_id}:{guest_run}"
    return f"{zone}:{user_id}"


# -- the catalogue ----------------------------------------------------------------------------


@dataclass
class Game:
    name: str
    profile: str
    slot: SlotGame
    rtp: Fraction | None = None  # disclosed RTP (declared, else computed on first use)
    hit_frequency: Fraction | None = None

    @property
    def coin_values(self) -> tuple[int, ...]:
        return self.slot.config.bets.coin_values


@dataclass
class ZoneCasino:
    zone: str
    config: CasinoZone
    games: dict[str, Game]
    policy: Policy
    minigames: dict[str, WheelConfig | ScratchConfig] = field(default_factory=dict)
    #: a cluster worker's own house account suffix (its ring member): the house balance
    #: row is updated by every round, and one row shared by every worker would serialise
    #: their commits on its lock; the zone's house is the sum of `house:<zone>:*`
    house_shard: str = ""

    @property
    def currency(self) -> str:
        return self.config.currency

    @property
    def house(self) -> str:
        base = self.config.house(self.zone)
        return f"{base}:{self.house_shard}" if self.house_shard else base


def build_zone(zone: str, cfg: CasinoZone) -> ZoneCasino:
    """Load and compile a zone's games for the partner's RTP profiles.

    Raises:
        ValueError: an unknown game or profile, or a disclosed RTP the policy refuses.
    """
    policy = gb_policy() if cfg.policy == "gb" else Policy()
    if cfg.policy_overrides:
        try:
            policy = msgspec.convert({**msgspec.to_builtins(policy), **cfg.policy_overrides}, Policy)
        except msgspec.ValidationError as exc:
            raise ValueError(f"casino.zones.{zone}.policy_overrides: {exc}") from None
    games: dict[str, Game] = {}
    for name, profile in cfg.games.items():
        try:
            config = decode_config(read_catalog(name))
        except FileNotFoundError:
            raise ValueError(f"casino.zones.{zone}.games: no game {name!r} in the catalogue") from None
        try:
            slot = compile_game(config, profile)
        except ValueError as exc:
            raise ValueError(f"casino.zones.{zone}.games.{name}: {exc}") from None
        game = Game(name, profile, slot)
        declared = config.declared.get(profile)
        if declared is not None:
            game.rtp = Fraction(declared.rtp)
            game.hit_frequency = Fraction(declared.hit_frequency) if declared.hit_frequency else None
            bound = Fraction(declared.cap_loss_bound) if declared.cap_loss_bound else None
            decision = check_game_rtp(policy, game.rtp, bound)
            if not decision.allowed:
                raise ValueError(f"casino.zones.{zone}.games.{name}: {decision.reason}")
        games[name] = game
    return ZoneCasino(zone, cfg, games, policy, {name: _load_minigame(zone, name) for name in cfg.minigames})


def _load_minigame(zone: str, name: str) -> WheelConfig | ScratchConfig:
    """A paid wheel or scratch card whose prizes are all cash (what this server can settle)."""
    where = f"casino.zones.{zone}.minigames: {name!r}"
    try:
        raw = read_catalog(name)
    except FileNotFoundError:
        raise ValueError(f"{where} is not in the catalogue") from None
    kind = msgspec.json.decode(raw, type=dict[str, Any]).get("kind")
    mini: WheelConfig | ScratchConfig
    try:
        if kind == "wheel":
            mini = msgspec.json.decode(raw, type=WheelConfig)
            validate_wheel(mini)
            prizes = [s.prize for s in mini.segments]
        elif kind == "scratch":
            mini = msgspec.json.decode(raw, type=ScratchConfig)
            validate_scratch(mini)
            prizes = [t.prize for t in mini.tiers]
            if mini.model != "independent":
                raise ValueError(f"{where}: pool scratch cards need a stored pool (not supported)")
        else:
            raise ValueError(f"{where}: only wheels and scratch cards can be played with minigame_play")
    except (msgspec.ValidationError, MiniGameError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if mini.cost <= 0:
        raise ValueError(f"{where}: a triggered mini-game (cost 0) cannot be bought")
    if any(p.kind not in ("credits", "end") for p in prizes):
        raise ValueError(f"{where}: non-cash prizes (free spins, bonus) are not granted by this server yet")
    return mini


# -- per-player state -------------------------------------------------------------------------


@dataclass
class Wallet:
    """A player's cached casino state on this worker (the database stays the authority)."""

    zone: str
    user_id: int
    account: str
    balance: int | None = None  # None: not loaded, or unknown after a failed commit
    open_rounds: dict[str, RoundRecord] = field(default_factory=dict)
    policy: PlayerState = field(default_factory=PlayerState)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Casino:
    """Handles casino requests for the hub's players, against `stores`."""

    def __init__(
        self,
        hub: Hub,
        stores: Stores,
        config: Config | None = None,
        *,
        rng: Rng | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.hub = hub
        self.stores = stores
        self.stats = GameStats()  # exported by gameserver/metrics.py
        self._disclosing: dict[int, asyncio.Task[SlotReport]] = {}  # exact RTP being computed, per game
        config = config or hub.config
        self.zones: dict[str, ZoneCasino] = {z: build_zone(z, c) for z, c in config.casino.zones.items()}
        member = getattr(getattr(hub, "info", None), "member", "")  # a cluster worker's ring member
        for zc in self.zones.values():
            zc.house_shard = member
        self.max_history = config.casino.max_history
        self.warm = config.casino.warm_wallets
        self.timeout = config.store.commit_timeout
        self.rng: Rng = rng or SystemRng()
        self._now_ms = now_ms or (lambda: int(hub.clock.wall() * 1000))
        self.wallets: dict[tuple[str, int], Wallet] = {}
        #: names this server run in guest accounts (guest ids restart with the process)
        self.run_id = secrets.token_hex(4)
        self.tasks: set[asyncio.Task[None]] = set()
        self.request_types = CASINO_TYPES
        #: merges a player's persisted responsible-gaming settings into the cached policy
        #: state when the wallet loads (set by the rewards service: limits, time-out, exclusion)
        self.policy_loader: Callable[[str, PlayerState], Awaitable[PlayerState]] | None = None
        self._handlers: Mapping[type, Callable[[ZoneCasino, Wallet, Player, Any], Awaitable[Any]]] = {
            m.Spin: self._spin,
            m.RoundContinue: self._continue,
            m.GameInfo: self._game_info,
            m.Balance: self._balance,
            m.History: self._history,
            m.MinigamePlay: self._minigame,
        }

    async def start(self) -> None:
        """Open every zone's house account (allowed to go negative: wins are paid in full)."""
        for zc in self.zones.values():
            await self.stores.wallet.open_wallet(zc.house, zc.currency, allow_negative=True)

    async def drain(self) -> None:
        """Wait for requests in flight (their commits finish; replies may go nowhere)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # -- hub hooks ---------------------------------------------------------------------

    def player_joined(self, player: Player) -> None:
        """Start loading the player's balance and open rounds (login: warm the cache)."""
        zc = self.zones.get(player.zone)
        if zc is not None and self.warm and (player.zone, player.user_id) not in self.wallets:
            task = asyncio.get_running_loop().create_task(self._warm(zc, player))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _warm(self, zc: ZoneCasino, player: Player) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._wallet(zc, player)
        except Exception as exc:  # the first casino request loads it again
            # (a timeout's text is empty: name the exception's type)
            logger.warning("loading %s/%s failed: %s %s", zc.zone, player.user_id, type(exc).__name__, exc)

    def player_left(self, player: Player) -> None:
        """Forget the cached state of an ended session (requests in flight still finish)."""
        self.wallets.pop((player.zone, player.user_id), None)

    def handle(self, player: Player, req: Any) -> None:
        """Run one casino request as a task; its reply goes to the player's current connection."""
        zc = self.zones.get(player.zone)
        if zc is None:
            raise RequestError(ErrorCode.NO_CASINO, f"zone {player.zone!r} has no casino")
        task = asyncio.get_running_loop().create_task(self._run(zc, player, req))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, zc: ZoneCasino, player: Player, req: Any) -> None:
        error: RequestError | None = None
        data: Any = None
        try:
            async with asyncio.timeout(self.timeout):
                wallet = await self._wallet(zc, player)
                data = await self._handlers[type(req)](zc, wallet, player, req)
        except Exception as exc:
            error = request_error(exc, type(req).__name__)
        self._send(player, req.id, data, error)

    def _send(self, player: Player, rid: int, data: Any, error: RequestError | None) -> None:
        self.hub.reply_to(player, rid, data, error)

    # -- wallets -----------------------------------------------------------------------

    async def _wallet(self, zc: ZoneCasino, player: Player) -> Wallet:
        key = (zc.zone, player.user_id)
        wallet = self.wallets.get(key)
        if wallet is None:
            run = player.session_id if player.role is Role.GUEST else None
            account = account_id(zc.zone, player.user_id, run)
            wallet = Wallet(zc.zone, player.user_id, account)
            if self.hub.players.get(key) is player:  # not for a session that already ended
                self.wallets[key] = wallet
        if wallet.balance is None:
            async with wallet.lock:
                if wallet.balance is None:
                    await self._load(zc, wallet)
        return wallet

    async def wallet_of(self, player: Player) -> Wallet:
        """The player's cached wallet, balance loaded; other services that move the player's
        money commit while holding its `lock` and then update its `balance`."""
        zc = self.zones.get(player.zone)
        if zc is None:
            raise RequestError(ErrorCode.NO_CASINO, f"zone {player.zone!r} has no casino")
        return await self._wallet(zc, player)

    async def _load(self, zc: ZoneCasino, wallet: Wallet) -> None:
        if self.policy_loader is not None:
            wallet.policy = await self.policy_loader(wallet.account, wallet.policy)
        snap = await self.stores.load_user(wallet.account)
        balance = next((b.balance for b in snap.balances if b.currency == zc.currency), None)
        wallet.open_rounds = {r.round_id: r for r in snap.open_rounds}
        if zc.config.starting_balance > 0:
            key = f"welcome:{wallet.account}"
            if await self.stores.wallet.get_txn(key) is None:
                amount = zc.config.starting_balance
                txn = Txn(
                    key=key,
                    entries=transfer(zc.house, wallet.account, zc.currency, amount, PostingKind.BONUS),
                )
                result = await self.stores.commit(txn)
                balance = None if result.duplicate else result.balance(wallet.account, zc.currency)
            if balance is None:
                # the snapshot was read before the welcome credit landed (an earlier attempt
                # committed it after its reply timed out), or another worker posted it: read
                # the balance again rather than take a missing wallet for an empty one
                wb = await self.stores.wallet.get_balance(wallet.account, zc.currency)
                if wb is None:
                    raise StoreBusy("the welcome credit is not readable yet: retry")
                balance = wb.balance
        wallet.balance = balance or 0

    async def _stored(self, key: str, check: list[Any]) -> dict[str, Any] | None:
        """The reply of an already committed key (a retry), or None."""
        result = await self.stores.wallet.get_txn(key)
        return None if result is None else self._replay(result, check)

    def _replay(self, result: TxnResult, check: list[Any]) -> dict[str, Any]:
        data = _dec_reply.decode(result.reply) if result.reply else {}
        if data.pop("_req", None) != check:
            raise RequestError(ErrorCode.REQUEST_ID_REUSED, "this request id was used for another request")
        return data

    # -- spin --------------------------------------------------------------------------

    async def _spin(self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.Spin) -> dict[str, Any]:
        game = zc.games.get(req.game)
        if game is None:
            raise RequestError(ErrorCode.GAME_NOT_FOUND, f"no game {req.game!r} in this zone")
        coin = req.coin if req.coin is not None else min(game.coin_values)
        bet = Bet(coin=coin, lines=req.lines)
        try:
            stake = game.slot.cost(check_slot_bet(game.slot, bet)) * coin
        except InvalidBet as exc:
            raise RequestError(ErrorCode.BAD_BET, str(exc)) from None
        if req.key is not None:
            key = txn_key("spin", wallet.account, "k", req.key)
        else:
            key = txn_key("spin", wallet.account, player.session_id, req.id)
        check = ["spin", req.game, req.coin, req.lines]
        return await self._settle(
            zc,
            wallet,
            player,
            key,
            check,
            game.name,
            stake,
            coin,
            lambda: play_round(game.slot, self.rng, bet),
        )

    async def _minigame(
        self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.MinigamePlay
    ) -> dict[str, Any]:
        mini = zc.minigames.get(req.game)
        if mini is None:
            raise RequestError(ErrorCode.GAME_NOT_FOUND, f"no mini-game {req.game!r} in this zone")
        coins = zc.config.minigame_coin_values
        coin = req.coin if req.coin is not None else min(coins)
        if coin not in coins:
            raise RequestError(ErrorCode.BAD_BET, f"coin value {coin} is not offered")
        if req.key is not None:
            key = txn_key("mini", wallet.account, "k", req.key)
        else:
            key = txn_key("mini", wallet.account, player.session_id, req.id)
        check = ["minigame_play", req.game, req.coin]
        rng = self.rng

        def draw() -> RoundOutcome:
            if isinstance(mini, WheelConfig):
                return spin_wheel(mini, rng, coin)
            return play_scratch(mini, rng, coin)[0]

        return await self._settle(zc, wallet, player, key, check, req.game, mini.cost * coin, coin, draw)

    async def _settle(
        self,
        zc: ZoneCasino,
        wallet: Wallet,
        player: Player,
        key: str,
        check: list[Any],
        name: str,
        stake: int,
        coin: int,
        draw: Callable[[], RoundOutcome],
    ) -> dict[str, Any]:
        """Validate, draw, settle in one durable transaction, and build the reply."""
        async with wallet.lock:
            if wallet.balance is None:
                await self._load(zc, wallet)
            assert wallet.balance is not None
            now = self._now_ms()
            refusal = self._refusal(zc, wallet, name, stake, now)
            if refusal is not None:
                stored = await self._stored(key, check)
                if stored is not None:
                    return stored
                raise refusal
            try:
                outcome = draw()
            except RoundTooLong:
                logger.error("round too long on %s: nothing posted", name)
                raise RequestError(ErrorCode.INTERNAL, "the round could not be completed") from None
            shown = reveal(outcome, 0)
            status = RoundStatus.SETTLED if shown.complete else RoundStatus.OPEN
            round_id = uuid.uuid4().hex
            before = wallet.balance
            reply: dict[str, Any] = {
                "_req": check,
                "round": round_id,
                "game": name,
                "coin": coin,
                "lines": outcome.bet.lines,
                "stake": outcome.stake,
                "win": outcome.win,
                "net": outcome.net,
                "ldw": outcome.is_ldw,
                "celebrate": outcome.celebrate,
                "capped": outcome.capped,
                "steps": len(outcome.steps),
                "revealed": shown.revealed,
                "running_win": shown.running_win,
                "complete": shown.complete,
                "step": msgspec.to_builtins(shown.step),
            }
            rec = RoundRecord(
                round_id=round_id,
                user_id=wallet.account,
                game_id=name,
                game_version=outcome.game_version,
                math_version=f"{outcome.profile}:{outcome.math_hash}"[:64],
                currency=zc.currency,
                bet=outcome.stake,
                win=outcome.win,
                status=status,
                state=_enc.encode(RoundState(outcome=outcome, revealed=shown.revealed)),
                balance_before=before,
                balance_after=before - outcome.stake + outcome.win,
                session_id=player.session_id,
                partner_id=zc.zone,
            )
            txn = spin_txn(
                key,
                player=wallet.account,
                house=zc.house,
                currency=zc.currency,
                bet=outcome.stake,
                win=outcome.win,
                round=rec,
                reply=_enc.encode(reply),
            )
            started = time.perf_counter()
            try:
                result = await self.stores.commit(txn)
                self.stats.observe_commit(time.perf_counter() - started)
            except BaseException:
                # outcome unknown (busy, down, timeout) or the cache was wrong (refused):
                # reload the balance from the store next time
                wallet.balance = None
                raise
            after = result.balance(wallet.account, zc.currency)
            if result.duplicate:
                wallet.balance = None  # posted by an earlier attempt: reload the truth
            else:
                wallet.balance = after
                self.stats.record(zc.zone, name, outcome.stake, outcome.win)
                self.hub.events.publish(
                    RoundSettled(
                        event_id=round_id,
                        zone=zc.zone,
                        at_ms=now,
                        user_id=player.user_id,
                        name=player.name,
                        game=name,
                        currency=zc.currency,
                        stake=outcome.stake,
                        win=outcome.win,
                        complete=shown.complete,
                        committed_at=result.committed_at,
                    )
                )
                if status is RoundStatus.OPEN:
                    wallet.open_rounds[round_id] = rec
                wallet.policy = _played(wallet.policy, now, outcome, name)
            if result.duplicate:
                data = self._replay(result, check)
            else:
                data = reply  # what was stored, without decoding it again
                del data["_req"]
            data["balance"] = after
            return data

    def _refusal(
        self, zc: ZoneCasino, wallet: Wallet, name: str, stake: int, now: int
    ) -> RequestError | None:
        for rec in wallet.open_rounds.values():
            if rec.game_id == name:
                return RequestError(
                    ErrorCode.ROUND_IN_PROGRESS, f"round {rec.round_id} of {name} is in progress"
                )
        decision = check_bet(zc.policy, wallet.policy, now, name, stake)
        if not decision.allowed:
            return RequestError(ErrorCode.POLICY_REFUSED, f"refused by policy: {decision.reason}")
        assert wallet.balance is not None
        if wallet.balance < stake:
            return RequestError(ErrorCode.INSUFFICIENT_FUNDS, f"balance {wallet.balance} below stake {stake}")
        return None

    # -- multi-step rounds -------------------------------------------------------------

    async def _round(self, wallet: Wallet, round_id: str) -> RoundRecord:
        rec = wallet.open_rounds.get(round_id) or await self.stores.rounds.get_round(round_id)
        if rec is None or rec.user_id != wallet.account:
            raise RequestError(ErrorCode.ROUND_NOT_FOUND, f"no round {round_id!r}")
        return rec

    async def _continue(
        self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.RoundContinue
    ) -> dict[str, Any]:
        key = txn_key("cont", wallet.account, player.session_id, req.id)
        check = ["round_continue", req.round, req.step]
        async with wallet.lock:
            stored = await self._stored(key, check)
            if stored is not None:
                return stored
            rec = await self._round(wallet, req.round)
            state = _dec_state.decode(rec.state)
            outcome = state.outcome
            if req.step is not None and req.step < state.revealed:
                # already revealed: show it again, change nothing
                shown = reveal(outcome, req.step)
                return self._step_reply(rec, outcome, shown.step, req.step + 1, shown.running_win, wallet)
            if req.step is not None and req.step > state.revealed:
                raise RequestError(
                    ErrorCode.BAD_REQUEST, f"step {req.step} is ahead of step {state.revealed}"
                )
            if state.revealed >= len(outcome.steps) or rec.status is not RoundStatus.OPEN:
                raise RequestError(ErrorCode.ROUND_COMPLETE, f"round {rec.round_id} is complete")
            shown = reveal(outcome, state.revealed)
            status = RoundStatus.SETTLED if shown.complete else RoundStatus.OPEN
            new = msgspec.structs.replace(
                rec,
                status=status,
                state=_enc.encode(RoundState(outcome=outcome, revealed=shown.revealed)),
            )
            data = self._step_reply(new, outcome, shown.step, shown.revealed, shown.running_win, wallet)
            txn = Txn(key=key, entries=(), round=new, reply=_enc.encode({"_req": check, **data}))
            result = await self.stores.commit(txn)
            if not result.duplicate:
                if status is RoundStatus.OPEN:
                    wallet.open_rounds[rec.round_id] = new
                else:
                    wallet.open_rounds.pop(rec.round_id, None)
            return self._replay(result, check)

    def _step_reply(
        self, rec: RoundRecord, outcome: RoundOutcome, step: Any, revealed: int, running: int, wallet: Wallet
    ) -> dict[str, Any]:
        return {
            "round": rec.round_id,
            "game": rec.game_id,
            "stake": outcome.stake,
            "win": outcome.win,
            "steps": len(outcome.steps),
            "revealed": revealed,
            "running_win": running,
            "complete": revealed == len(outcome.steps),
            "step": msgspec.to_builtins(step),
            "balance": wallet.balance,
        }

    # -- read-only requests ------------------------------------------------------------

    async def _balance(
        self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.Balance
    ) -> dict[str, Any]:
        return {
            "currency": zc.currency,
            "balance": wallet.balance,
            "open_rounds": [_open_round(r) for r in wallet.open_rounds.values()],
        }

    async def _history(
        self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.History
    ) -> dict[str, Any]:
        limit = min(req.limit, self.max_history)
        rows = await self.stores.rounds.history(wallet.account, limit=limit, before=req.before)
        rounds = [_history_entry(r) for r in rows]
        nxt = rows[-1].created_at if len(rows) == limit else None
        return {"rounds": rounds, "before": nxt}

    async def _game_info(
        self, zc: ZoneCasino, wallet: Wallet, player: Player, req: m.GameInfo
    ) -> dict[str, Any]:
        if req.game is None:
            games = []
            for g in zc.games.values():
                await self._disclose(g)
                games.append(_game_summary(g))
            minis = [
                {"game": n, "kind": g.kind, "version": g.version, "cost": g.cost, "rtp": _pct(_mini_rtp(g))}
                for n, g in zc.minigames.items()
            ]
            return {
                "currency": zc.currency,
                "games": games,
                "minigames": minis,
                "minigame_coin_values": list(zc.config.minigame_coin_values),
            }
        game = zc.games.get(req.game)
        if game is None:
            raise RequestError(ErrorCode.GAME_NOT_FOUND, f"no game {req.game!r} in this zone")
        await self._disclose(game)
        return _game_detail(game)

    async def _disclose(self, game: Game) -> None:
        """Compute the exact RTP of a profile without a declared one (once, off the loop).

        Single-flight: concurrent requests for the same game wait for one computation
        instead of each starting its own (which starved the loop and timed out).
        """
        if game.rtp is not None:
            return
        task = self._disclosing.get(id(game))
        if task is None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(exact_report, game.slot))
            self._disclosing[id(game)] = task
        try:
            report = await asyncio.shield(task)
        finally:
            if task.done():
                self._disclosing.pop(id(game), None)
        game.rtp, game.hit_frequency = report.rtp, report.hit_frequency


def request_error(exc: Exception, what: str) -> RequestError:
    """The wire error for a money request that failed with `exc` (retryable store
    failures keep the request's id usable for the retry)."""
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, InsufficientFunds):
        return RequestError(ErrorCode.INSUFFICIENT_FUNDS, "balance too low for this stake")
    if isinstance(exc, StoreBusy):
        return RequestError(ErrorCode.BUSY, "the store is busy: retry with the same id")
    if isinstance(exc, StoreUnavailable | StoreClosed | TimeoutError):
        return RequestError(ErrorCode.UNAVAILABLE, "the store is unavailable: retry with the same id")
    if isinstance(exc, RoundChanged):  # nothing was posted: a retry reads the round again
        return RequestError(ErrorCode.BUSY, "the round changed meanwhile: retry with the same id")
    if isinstance(exc, RoundConflict):
        return RequestError(ErrorCode.ROUND_COMPLETE, "the round is already settled")
    logger.error("%s failed", what, exc_info=exc)
    return RequestError(ErrorCode.INTERNAL, "internal error")


def _played(state: PlayerState, now: int, outcome: RoundOutcome, game: str) -> PlayerState:
    """Record a round for the policy checks; activity is kept only while limits need it."""
    if not state.limits:
        return msgspec.structs.replace(state, last_round_at={**state.last_round_at, game: now})
    state = record(state, Activity(at=now, stake=outcome.stake, win=outcome.win), game)
    horizon = now - 30 * DAY  # the longest limit period
    if state.activity and state.activity[0].at <= horizon:
        state = msgspec.structs.replace(state, activity=tuple(a for a in state.activity if a.at > horizon))
    return state


def _mini_rtp(g: WheelConfig | ScratchConfig) -> Fraction:
    if isinstance(g, WheelConfig):
        return wheel_rtp(g)
    return scratch_expected_credits(g) / g.cost


def _pct(f: Fraction | None) -> float | None:
    return None if f is None else round(float(f) * 100, 4)


def _game_summary(g: Game) -> dict[str, Any]:
    cfg = g.slot.config
    lines = cfg.evaluation.lines
    return {
        "game": g.name,
        "title": cfg.title,
        "version": cfg.version,
        "profile": g.profile,
        "rtp": _pct(g.rtp),
        "coin_values": list(g.coin_values),
        "lines": len(lines.paylines) if lines is not None else None,
        "selectable_lines": bool(lines and lines.selectable),
        "ways": cfg.evaluation.ways.cost if cfg.evaluation.ways is not None else None,
    }


def _game_detail(g: Game) -> dict[str, Any]:
    cfg = g.slot.config
    fs = cfg.features.free_spins
    return {
        **_game_summary(g),
        "rtp_exact": None if g.rtp is None else str(g.rtp),
        "hit_frequency": _pct(g.hit_frequency),
        "math_hash": g.slot.math_hash,
        "grid": {"reels": cfg.grid.reels, "rows": cfg.grid.rows},
        "symbols": [{"id": s.id, "name": s.name, "kind": s.kind} for s in cfg.symbols],
        "paytable": {sym: {str(n): pay for n, pay in pays.items()} for sym, pays in cfg.paytable.items()},
        "paylines": [list(p) for p in cfg.evaluation.lines.paylines] if cfg.evaluation.lines else None,
        "scatters": [
            {"symbol": s.symbol, "pays": {str(n): p for n, p in s.pays.items()}}
            for s in cfg.evaluation.scatters
        ],
        "free_spins": None
        if fs is None
        else {
            "trigger": fs.trigger,
            "awards": {str(n): a for n, a in fs.awards.items()},
            "multiplier": fs.multiplier,
            "retrigger": fs.retrigger,
            "max_spins": fs.max_spins,
        },
        "max_win": cfg.max_win.multiple_of_total_bet if cfg.max_win is not None else None,
    }


def _open_round(rec: RoundRecord) -> dict[str, Any]:
    state = _dec_state.decode(rec.state)
    return {
        "round": rec.round_id,
        "game": rec.game_id,
        "steps": len(state.outcome.steps),
        "revealed": state.revealed,
    }


def _history_entry(rec: RoundRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "round": rec.round_id,
        "game": rec.game_id,
        "game_version": rec.game_version,
        "math_version": rec.math_version,
        "status": str(rec.status),
        "currency": rec.currency,
        "stake": rec.bet,
        "win": rec.win,
        "balance_before": rec.balance_before,
        "balance_after": rec.balance_after,
        "created_at": rec.created_at,
        "settled_at": rec.settled_at or None,
    }
    if rec.state:
        state = _dec_state.decode(rec.state)
        # only what the player has seen: unrevealed free spins stay hidden
        entry["steps"] = [msgspec.to_builtins(s) for s in state.outcome.steps[: state.revealed]]
        entry["revealed"] = state.revealed
        entry["total_steps"] = len(state.outcome.steps)
    return entry


__all__ = ["CASINO_TYPES", "Casino", "RoundState", "account_id", "build_zone", "request_error", "txn_key"]
