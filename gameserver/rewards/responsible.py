"""The player's responsible-gaming settings over the protocol (RG-1 to RG-4).

The rules are `games.policy` (decrease now, increase after the cooling-off period and, by
policy, a confirmation; time-outs of the offered lengths; self-exclusion of at least the
minimum, ended only by an explicit re-activation after expiry). The settings are stored
as a user variable `rg` of owner `rg:<account>` (written before the reply), together
with the deposits of the last 30 days (for deposit limits). The casino applies them to
every bet: the rewards service installs `merge_persisted` as the casino's
`policy_loader`, and updates the cached state of an online player on every change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from games.policy import (
    DAY,
    PERIODS,
    Activity,
    LimitSetting,
    PlayerState,
    confirm_limit_increase,
    effective_limit,
    is_self_excluded,
    reactivate,
    reality_check_due,
    request_limit,
    self_exclude,
    start_timeout,
)
from persistence import Variable, VarScope
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent

from .service import Ctx, ZoneRewards

if TYPE_CHECKING:
    from .service import Rewards

_MONTH = 30 * DAY
_HISTORY_PAGE = 500
_HISTORY_PAGES = 20  # at most 10,000 rounds of the last 30 days seed the loss and wager windows


class Settings(msgspec.Struct, kw_only=True):
    """What is persisted of a player's policy state."""

    limits: tuple[LimitSetting, ...] = ()
    timeout_until: int | None = None
    excluded_until: int | None = None
    reactivated: bool = False
    deposits: tuple[Activity, ...] = ()
    session_limit_ms: int | None = None
    reality_check_ms: int | None = None


def _owner(account: str) -> str:
    return f"rg:{account}"


class Responsible:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        self._cache: dict[str, Settings] = {}
        #: per online account: when the last reality check was shown
        self._last_check: dict[str, int] = {}

    def handlers(self) -> dict[type, Any]:
        return {
            rm.RgStatus: self.status,
            rm.RgLimit: self.limit,
            rm.RgConfirm: self.confirm,
            rm.RgTimeout: self.timeout,
            rm.RgExclude: self.exclude,
            rm.RgReactivate: self.reactivate,
            rm.RgSession: self.session,
        }

    def forget(self, account: str) -> None:
        self._cache.pop(account, None)
        self._last_check.pop(account, None)

    async def settings(self, account: str) -> Settings:
        cached = self._cache.get(account)
        if cached is not None:
            return cached
        rows = await self.svc.stores.variables.load_variables(VarScope.USER, _owner(account))
        found = next((v for v in rows if v.name == "rg"), None)
        settings = Settings() if found is None else msgspec.msgpack.decode(found.value, type=Settings)
        self._cache[account] = settings
        return settings

    async def _save(self, account: str, settings: Settings) -> None:
        horizon = self.svc.now() - _MONTH
        settings.deposits = tuple(a for a in settings.deposits if a.at > horizon)
        var = Variable(
            scope=VarScope.USER, owner=_owner(account), name="rg", value=msgspec.msgpack.encode(settings)
        )
        await self.svc.stores.variables.put_variables([var])
        self._cache[account] = settings
        wallet = self.svc.wallet_of_account(account)
        if wallet is not None:
            wallet.policy = await self._seeded(account, _merge(wallet.policy, settings))

    async def merge_persisted(self, account: str, state: PlayerState) -> PlayerState:
        """The casino's `policy_loader`: the cached state with the stored settings (and, when
        a loss or wager limit is set, the rounds of the last 30 days as its activity)."""
        state = await self._seeded(account, _merge(state, await self.settings(account)))
        if state.session_started_at is None:  # the wallet loads at login: the session starts
            state = msgspec.structs.replace(state, session_started_at=self.svc.now())
        return state

    async def _seeded(self, account: str, state: PlayerState) -> PlayerState:
        """Fill the rolling loss and wager windows from the round history, once: the casino
        records rounds in memory only while a limit exists, from when the wallet loaded."""
        if state.activity or not any(s.kind in ("loss", "wager") for s in state.limits):
            return state
        horizon = self.svc.now() - _MONTH
        found: list[Activity] = []
        before = None
        for _ in range(_HISTORY_PAGES):
            rows = await self.svc.stores.rounds.history(account, limit=_HISTORY_PAGE, before=before)
            found.extend(
                Activity(at=r.created_at, stake=r.bet, win=r.win) for r in rows if r.created_at > horizon
            )
            if len(rows) < _HISTORY_PAGE or rows[-1].created_at <= horizon:
                break
            before = rows[-1].created_at
        return msgspec.structs.replace(state, activity=tuple(sorted(found, key=lambda a: a.at)))

    async def state(self, zr: ZoneRewards, account: str) -> PlayerState:
        """The player's policy state for entry checks (deposits included)."""
        wallet = self.svc.wallet_of_account(account)
        base = wallet.policy if wallet is not None else PlayerState()
        settings = await self.settings(account)
        state = _merge(base, settings)
        return msgspec.structs.replace(state, activity=(*state.activity, *settings.deposits))

    async def record_deposit(self, zr: ZoneRewards, account: str, activity: Activity) -> None:
        settings = await self.settings(account)
        await self._save(account, msgspec.structs.replace(settings, deposits=(*settings.deposits, activity)))

    # -- requests ------------------------------------------------------------------------

    async def _view(self, zr: ZoneRewards, account: str) -> dict[str, Any]:
        now = self.svc.now()
        policy = zr.casino.policy
        state = await self.state(zr, account)
        limits = []
        for s in sorted(state.limits, key=lambda s: (s.kind, PERIODS[s.period])):
            limits.append(
                {
                    "kind": s.kind,
                    "period": s.period,
                    "amount": effective_limit(s, now, policy),
                    "pending": s.pending,
                    "pending_at": s.pending_at,
                    "needs_confirmation": s.pending_at is not None and policy.confirm_limit_increase,
                }
            )
        used = {}
        for period, span in PERIODS.items():
            window = [a for a in state.activity if now - span < a.at <= now]
            used[period] = {
                "deposited": sum(a.deposit for a in window),
                "wagered": sum(a.stake for a in window),
                "lost": max(0, sum(a.stake - a.win for a in window)),
            }
        return {
            "limits": limits,
            "timeout_until": state.timeout_until
            if state.timeout_until and state.timeout_until > now
            else None,
            "excluded_until": state.excluded_until,
            "self_excluded": is_self_excluded(state, now),
            "session": {
                "started_at": state.session_started_at,
                "limit_s": None if state.session_limit_ms is None else state.session_limit_ms // 1000,
                "reality_check_s": None if state.reality_check_ms is None else state.reality_check_ms // 1000,
            },
            "activity": used,
            "policy": {
                "timeout_options_s": [t // 1000 for t in policy.timeout_options_ms],
                "self_exclusion_min_s": policy.self_exclusion_min_ms // 1000,
                "limit_increase_cooling_s": policy.limit_increase_cooling_ms // 1000,
                "confirm_limit_increase": policy.confirm_limit_increase,
            },
        }

    async def status(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgStatus) -> dict[str, Any]:
        return await self._view(zr, ctx.account)

    async def _change(self, zr: ZoneRewards, account: str, change: Any) -> dict[str, Any]:
        async with self.svc.locked(account):
            settings = await self.settings(account)
            state = _merge(PlayerState(), settings)
            try:
                state = change(state, self.svc.now())
            except ValueError as exc:
                raise RequestError(ErrorCode.LIMIT_INVALID, str(exc)) from None
            await self._save(account, _settings(state, settings.deposits))
            return await self._view(zr, account)

    async def session(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgSession) -> dict[str, Any]:
        """The session time limit and the reality-check interval apply at once."""
        limit = None if req.limit_s is None else req.limit_s * 1000
        check = None if req.reality_check_s is None else req.reality_check_s * 1000
        return await self._change(
            zr,
            ctx.account,
            lambda s, now: msgspec.structs.replace(s, session_limit_ms=limit, reality_check_ms=check),
        )

    async def tick(self, now: int) -> None:
        """RG-5: push `reality_check` (elapsed time, net position of the session's rounds) to
        online players whose interval has passed since the session started or the last check."""
        for (zone, user), wallet in list(self.svc.casino.wallets.items()):
            state = wallet.policy
            if state.reality_check_ms is None or state.session_started_at is None:
                continue
            last = self._last_check.get(wallet.account)
            player = self.svc.hub.players.get((zone, user))
            if player is None or not reality_check_due(state, now, last):
                continue
            self._last_check[wallet.account] = now
            wagered, net = await self._session_net(wallet.account, player.session_id)
            player.push(
                OutEvent(
                    "reality_check",
                    {
                        "elapsed_s": (now - state.session_started_at) // 1000,
                        "wagered": wagered,
                        "net": net,
                        "balance": wallet.balance,
                        "session_limit_s": None
                        if state.session_limit_ms is None
                        else state.session_limit_ms // 1000,
                    },
                )
            )

    async def _session_net(self, account: str, session: str) -> tuple[int, int]:
        """Stakes and net result of the session's rounds (the newest rounds, until another
        session's)."""
        wagered = net = 0
        before = None
        for _ in range(_HISTORY_PAGES):
            rows = await self.svc.stores.rounds.history(account, limit=_HISTORY_PAGE, before=before)
            for r in rows:
                if r.session_id != session:
                    return wagered, net
                wagered += r.bet
                net += r.win - r.bet
            if len(rows) < _HISTORY_PAGE:
                break
            before = rows[-1].created_at
        return wagered, net

    async def limit(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgLimit) -> dict[str, Any]:
        policy = zr.casino.policy
        return await self._change(
            zr, ctx.account, lambda s, now: request_limit(policy, s, now, req.kind, req.period, req.amount)
        )

    async def confirm(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgConfirm) -> dict[str, Any]:
        return await self._change(
            zr, ctx.account, lambda s, now: confirm_limit_increase(s, now, req.kind, req.period)
        )

    async def timeout(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgTimeout) -> dict[str, Any]:
        policy = zr.casino.policy
        return await self._change(
            zr, ctx.account, lambda s, now: start_timeout(policy, s, now, req.seconds * 1000)
        )

    async def exclude(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgExclude) -> dict[str, Any]:
        policy = zr.casino.policy
        return await self._change(
            zr,
            ctx.account,
            lambda s, now: self_exclude(policy, s, now, req.seconds * 1000, confirmed=req.confirm),
        )

    async def view(self, zr: ZoneRewards, account: str) -> dict[str, Any]:
        """The player's limits, time-out, exclusion and activity (the back office's view)."""
        return await self._view(zr, account)

    async def exclude_account(self, zr: ZoneRewards, account: str, seconds: int) -> dict[str, Any]:
        """An exclusion the operator imposes (the back office): as a confirmed self-exclusion,
        of any length (the players' minimum is theirs); it never shortens one in force."""
        policy = msgspec.structs.replace(zr.casino.policy, self_exclusion_min_ms=0)
        return await self._change(
            zr, account, lambda s, now: self_exclude(policy, s, now, seconds * 1000, confirmed=True)
        )

    async def reactivate(self, zr: ZoneRewards, ctx: Ctx, req: rm.RgReactivate) -> dict[str, Any]:
        settings = await self.settings(ctx.account)
        if settings.excluded_until is None or settings.reactivated:
            raise RequestError(ErrorCode.NOT_EXCLUDED, "no self-exclusion to end")
        if self.svc.now() < settings.excluded_until:
            raise RequestError(ErrorCode.NOT_EXCLUDED, "the self-exclusion has not expired")
        return await self._change(zr, ctx.account, reactivate)


def _merge(state: PlayerState, settings: Settings) -> PlayerState:
    return msgspec.structs.replace(
        state,
        limits=settings.limits,
        timeout_until=settings.timeout_until,
        excluded_until=settings.excluded_until,
        reactivated=settings.reactivated,
        session_limit_ms=settings.session_limit_ms,
        reality_check_ms=settings.reality_check_ms,
    )


def _settings(state: PlayerState, deposits: tuple[Activity, ...]) -> Settings:
    return Settings(
        limits=state.limits,
        timeout_until=state.timeout_until,
        excluded_until=state.excluded_until,
        reactivated=state.reactivated,
        deposits=deposits,
        session_limit_ms=state.session_limit_ms,
        reality_check_ms=state.reality_check_ms,
    )
