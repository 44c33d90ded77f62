"""The rewards service: request dispatch, money moves, locks, the scheduler and events.

Every feature (lotteries, bonuses, missions, referrals, responsible gaming) is a class
holding a reference to this service; this module owns what they share:

- **money**: `move()` commits one `Txn` through `stores.commit` (group commit, durable
  before it returns) under an idempotency key, while holding the casino wallet's lock of
  a player who is online here, and then updates that cached balance;
- **order**: one asyncio lock per account (`locked`), taken before the casino wallet lock,
  never after it, so a player's rewards requests and events run one at a time;
- **retries**: a money request's reply is stored with its transaction; the same `id` (or
  `key`) returns it again;
- **time**: `now()` reads the hub's injected clock (epoch ms); `tick()` runs the schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from games.lottery import LotteryConfig, LotteryError, validate_lottery
from games.policy import PlayerState, check_entry
from games.rng import Rng, SystemRng
from persistence import (
    RoundRecord,
    Stores,
    Txn,
    TxnResult,
)
from persistence.records import Entry
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from rooms.roles import Role

from ..casino import Casino, Wallet, ZoneCasino, account_id, request_error, txn_key
from ..config import LotterySchedule, RewardsZone
from ..domain import DomainEvent, RoundSettled
from ..services import stop_task

if TYPE_CHECKING:
    from ..hub import Hub
    from ..player import Player

logger = logging.getLogger("croupier.rewards")

#: Request types handled here (the hub sends them to `Rewards.handle`).
REWARDS_TYPES: frozenset[type] = frozenset(rm.REWARDS_MESSAGES)

_enc = msgspec.msgpack.Encoder()
_dec_reply = msgspec.msgpack.Decoder(dict[str, Any])

Handler = Callable[["ZoneRewards", "Ctx", Any], Awaitable[Any]]


@dataclass
class ZoneRewards:
    """A zone's rewards configuration with its casino (currency, house, policy, games)."""

    zone: str
    casino: ZoneCasino
    cfg: RewardsZone
    lotteries: dict[str, tuple[LotterySchedule, LotteryConfig]] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        return self.casino.currency

    @property
    def house(self) -> str:
        return self.casino.house

    @property
    def grants_bonuses(self) -> bool:
        """Whether a source of bonus grants is configured (so rounds may be wagering one)."""
        c = self.cfg
        return bool(c.bonuses or c.minigame_bonus or c.daily_login)

    @property
    def counts_rounds(self) -> bool:
        """Whether a settled round can change anything here: missions, bonus wagering or a
        referral programme."""
        return bool(self.cfg.missions or self.cfg.referral) or self.grants_bonuses


@dataclass
class Ctx:
    """One request's player, account and idempotency key parts."""

    player: Player
    account: str
    req: Any

    def key(self, kind: str) -> str:
        """The request's idempotency key: the client `key` if any, else session and id."""
        client_key = getattr(self.req, "key", None)
        if client_key is not None:
            return txn_key(kind, self.account, "k", client_key)
        return txn_key(kind, self.account, self.player.session_id, self.req.id)


def bonus_account_of(account: str) -> str:
    """The player's bonus balance, apart from cash (BON-3)."""
    return f"{account}:bonus"


def payments_account(zone: str) -> str:
    """The zone's payment-provider account deposits come from (may go negative)."""
    return f"payments:{zone}"


def short_hash(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:n]


def build_rewards_zone(zone: str, zc: ZoneCasino) -> ZoneRewards:
    """Load a zone's lotteries from the catalogue and check its offers.

    Raises:
        ValueError: a lottery not in the catalogue, a bad schedule, or an offer the zone's
            policy forbids (wagering cap, mixed products).
    """
    from games.bonus import BonusError, validate_template
    from games.catalog import read_catalog

    cfg = zc.config.rewards
    zr = ZoneRewards(zone, zc, cfg)
    where = f"casino.zones.{zone}.rewards"
    for sched in cfg.lotteries:
        try:
            lottery = msgspec.json.decode(read_catalog(sched.game), type=LotteryConfig)
            validate_lottery(lottery)
        except FileNotFoundError:
            raise ValueError(f"{where}.lotteries: no lottery {sched.game!r} in the catalogue") from None
        except (msgspec.ValidationError, LotteryError) as exc:
            raise ValueError(f"{where}.lotteries.{sched.game}: {exc}") from None
        if sched.period_s <= 0 or not 1 <= sched.cutoff_s < sched.period_s:
            raise ValueError(f"{where}.lotteries.{sched.game}: need period_s > cutoff_s >= 1")
        zr.lotteries[lottery.id] = (sched, lottery)
    for template in cfg.bonuses:
        try:
            validate_template(zc.policy, template)
        except BonusError as exc:
            raise ValueError(f"{where}.bonuses.{template.id}: {exc}") from None
    return zr


class Rewards:
    """Handles rewards requests for the hub's players and runs the reward schedules."""

    def __init__(
        self,
        hub: Hub,
        stores: Stores,
        casino: Casino,
        *,
        rng: Rng | None = None,
        now_ms: Callable[[], int] | None = None,
        tick: bool = True,
    ) -> None:
        from .bonuses import Bonuses
        from .lotteries import Lotteries
        from .missions import Missions
        from .picks import Picks
        from .referrals import Referrals
        from .responsible import Responsible

        self.hub = hub
        self.stores = stores
        self.casino = casino
        self.rng: Rng = rng or SystemRng()
        self._now_ms = now_ms or (lambda: int(hub.clock.wall() * 1000))
        self.zones = {z: build_rewards_zone(z, zc) for z, zc in casino.zones.items()}
        self.timeout = casino.timeout
        self.request_types = REWARDS_TYPES
        self.tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._ticker: asyncio.Task[None] | None = None
        #: scheduler ticks that raised (logged; the next tick tries again)
        self.tick_failures = 0
        self._tick_enabled = tick
        self.lotteries = Lotteries(self)
        self.bonuses = Bonuses(self)
        self.missions = Missions(self)
        self.referrals = Referrals(self)
        self.responsible = Responsible(self)
        self.picks = Picks(self)
        self._handlers: dict[type, Handler] = {}
        parts = (self.lotteries, self.bonuses, self.missions, self.referrals, self.responsible, self.picks)
        for part in parts:
            self._handlers.update(part.handlers())
        assert set(self._handlers) == REWARDS_TYPES, set(REWARDS_TYPES) - set(self._handlers)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the payment accounts, hook into the casino and the events, start ticking."""
        for zr in self.zones.values():
            await self.stores.wallet.open_wallet(payments_account(zr.zone), zr.currency, allow_negative=True)
        self.casino.policy_loader = self.responsible.merge_persisted
        self.hub.events.subscribe("rewards", self._on_event)
        await self.tick()
        if self._tick_enabled and self.zones:
            period = min(zr.cfg.tick_s for zr in self.zones.values())
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(period), name="rewards")

    async def _tick_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            await self._flush_or_log("at a tick")
            try:
                await self.tick()
            except Exception:
                self.tick_failures += 1
                logger.exception("rewards tick failed")

    async def flush(self) -> int:
        """Write the staged progress documents (missions, bonus wagering, referees' activity):
        one transaction per kind. Each is tried; the first failure is raised (what failed stays staged)."""
        written = 0
        error: Exception | None = None
        for staged in (self.missions.docs, self.bonuses.staged, self.referrals.staged):
            try:
                written += await staged.flush()
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error
        return written

    async def _flush_or_log(self, when: str, level: int = logging.WARNING) -> None:
        """`flush`; a failure is logged (what failed stays staged: the next flush tries again)."""
        try:
            await self.flush()
        except Exception as exc:
            name = type(exc).__name__
            logger.log(
                level, "rewards: %d staged documents not written %s: %s %s", self.pending, when, name, exc
            )

    async def release(self) -> None:
        """Before sessions move to another worker: finish the handlers in flight, then
        write what they staged (the new owner reads it from the store; a move goes on
        when the write fails)."""
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self._flush_or_log("before a move")

    async def tick(self) -> None:
        """Run due schedules once: open and draw lotteries, release held referrals,
        expire bonuses, finish overdue pick rounds. Safe to run twice or on several workers (idempotent)."""
        now = self.now()
        for zr in self.zones.values():
            await self.lotteries.tick(zr, now)
        await self.referrals.tick(now)
        await self.bonuses.tick(now)
        await self.picks.tick(now)
        await self.responsible.tick(now)

    async def drain(self) -> None:
        """Stop the scheduler and wait for requests and event handlers in flight."""
        await stop_task(self._ticker)
        self._ticker = None
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self._flush_or_log("at stop", logging.ERROR)

    @property
    def pending(self) -> int:
        """Progress documents staged and not written yet."""
        return self.missions.docs.pending + self.bonuses.staged.pending + self.referrals.staged.pending

    async def drain_tasks(self) -> None:
        """Wait for requests and event handlers in flight (the scheduler keeps running)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def now(self) -> int:
        return self._now_ms()

    def metric_families(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Prometheus families, read at scrape time (gameserver/metrics.py)."""
        yield GaugeMetricFamily(
            "croupier_rewards_staged", "Progress documents staged and not written yet", value=self.pending
        )
        yield CounterMetricFamily(
            "croupier_rewards_tick_failures", "Rewards scheduler ticks that failed", value=self.tick_failures
        )
        yield GaugeMetricFamily(
            "croupier_pick_rounds_open",
            "Open pick rounds this worker's scheduler times out",
            value=self.picks.known,
        )
        yield CounterMetricFamily(
            "croupier_pick_auto_finished",
            "Pick rounds finished by the INT-4 default (the lowest unopened boxes)",
            value=self.picks.auto_finished,
        )

    # -- hub hooks -----------------------------------------------------------------------

    def player_joined(self, player: Player) -> None:
        zr = self.zones.get(player.zone)
        if zr is not None:
            peer = player.conn.link.peer if player.conn is not None else ""
            self.spawn(self.referrals.joined(zr, self.account(player), peer))
            self.spawn(self.picks.joined(zr, self.account(player)))

    def player_left(self, player: Player) -> None:
        account = self.account(player)
        self.bonuses.forget(account)
        self.responsible.forget(account)
        self.missions.forget(account)
        self.referrals.forget(account)

    def handle(self, player: Player, req: Any) -> None:
        zr = self.zones.get(player.zone)
        if zr is None:
            raise RequestError(ErrorCode.NO_CASINO, f"zone {player.zone!r} has no casino")
        self.spawn(self._run(zr, player, req))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, zr: ZoneRewards, player: Player, req: Any) -> None:
        error: RequestError | None = None
        data: Any = None
        try:
            async with asyncio.timeout(self.timeout):
                ctx = Ctx(player, self.account(player), req)
                data = await self._handlers[type(req)](zr, ctx, req)
        except Exception as exc:
            error = request_error(exc, type(req).__name__)
        self.hub.reply_to(player, req.id, data, error)

    # -- events --------------------------------------------------------------------------

    def _on_event(self, event: DomainEvent) -> None:
        if not isinstance(event, RoundSettled):
            return
        zr = self.zones.get(event.zone)
        if zr is not None and zr.counts_rounds:  # else no task, no lock, per round
            self.spawn(self._on_round(zr, event))

    async def _on_round(self, zr: ZoneRewards, event: RoundSettled) -> None:
        account = self.account_of(zr.zone, event.user_id)
        try:
            async with self.locked(account):
                await self.missions.on_round(zr, account, event)
                await self.bonuses.on_round(zr, account, event)
                await self.referrals.on_round(zr, account, event)
        except Exception:
            logger.exception("rewards: round %s of %s not applied", event.event_id, account)

    # -- accounts, locks, money ----------------------------------------------------------

    def account(self, player: Player) -> str:
        run = player.session_id if player.role is Role.GUEST else None
        return account_id(player.zone, player.user_id, run)

    def account_of(self, zone: str, user_id: int) -> str:
        """The account of a user who settled a round here (a guest's names this run)."""
        wallet = self.casino.wallets.get((zone, user_id))
        return wallet.account if wallet is not None else account_id(zone, user_id)

    def wallet_of_account(self, account: str) -> Wallet | None:
        """The casino's cached wallet of `account` if its player is online here
        (accounts are `<zone>:<user>` or `<zone>:guest:<user>:<run>`)."""
        if ":guest:" in account:
            zone, rest = account.rsplit(":guest:", 1)
            uid = rest.split(":", 1)[0]
        else:
            zone, _, uid = account.rpartition(":")
        if not uid.isdigit():
            return None
        wallet = self.casino.wallets.get((zone, int(uid)))
        return wallet if wallet is not None and wallet.account == account else None

    @contextlib.asynccontextmanager
    async def locked(self, account: str) -> AsyncIterator[None]:
        """Run one rewards operation of `account` at a time (before any casino lock)."""
        lock = self._locks.get(account)
        if lock is None:
            lock = self._locks[account] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock._waiters:  # type: ignore[attr-defined]
                self._locks.pop(account, None)

    async def move(
        self,
        zr: ZoneRewards,
        key: str,
        entries: tuple[Entry, ...],
        account: str,
        reply: bytes = b"",
        round: RoundRecord | None = None,
        round_base: int = 0,
    ) -> TxnResult:
        """Commit one money transaction, keeping the casino's cached balance of `account` true
        (`round_base`: see `Txn`)."""
        txn = Txn(key=key, entries=entries, reply=reply, round=round, round_base=round_base)
        wallet = self.wallet_of_account(account)
        if wallet is None:
            return await self.stores.commit(txn)
        async with wallet.lock:
            try:
                result = await self.stores.commit(txn)
            except BaseException:
                wallet.balance = None  # outcome unknown: the casino reloads the truth
                raise
            after = result.balance(account, zr.currency)
            if result.duplicate or after is None:
                wallet.balance = None
            else:
                wallet.balance = after
            return result

    async def balance(self, zr: ZoneRewards, account: str) -> int:
        wb = await self.stores.wallet.get_balance(account, zr.currency)
        return 0 if wb is None else wb.balance

    async def stored(self, key: str, check: list[Any]) -> dict[str, Any] | None:
        """The reply of an already committed key (a retry), or None."""
        result = await self.stores.wallet.get_txn(key)
        return None if result is None else self.replay(result, check)

    @staticmethod
    def replay(result: TxnResult, check: list[Any]) -> dict[str, Any]:
        data = _dec_reply.decode(result.reply) if result.reply else {}
        if data.pop("_req", None) != check:
            raise RequestError(ErrorCode.REQUEST_ID_REUSED, "this request id was used for another request")
        return data

    @staticmethod
    def encode_reply(check: list[Any], data: Mapping[str, Any]) -> bytes:
        return _enc.encode({"_req": check, **data})

    async def entry_allowed(self, zr: ZoneRewards, account: str, entry: Any) -> None:
        """Refuse an entry point (lottery ticket, bonus claim, referral) by the player's
        policy state: self-exclusion, time-out, blacklist (RG-4, RG-7).

        Raises:
            RequestError: 404 `policy_refused` naming the reason.
        """
        state = await self.responsible.state(zr, account)
        decision = check_entry(zr.casino.policy, state, self.now(), entry)
        if not decision.allowed:
            raise RequestError(ErrorCode.POLICY_REFUSED, f"refused by policy: {decision.reason}")

    async def policy_state(self, zr: ZoneRewards, account: str) -> PlayerState:
        return await self.responsible.state(zr, account)


__all__ = [
    "REWARDS_TYPES",
    "Ctx",
    "Rewards",
    "ZoneRewards",
    "bonus_account_of",
    "payments_account",
    "short_hash",
]
