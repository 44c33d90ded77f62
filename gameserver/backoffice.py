"""The operators' back office: look a player up, adjust a balance, kick, ban and unban.

Each operation runs on the player's home worker (where its session and cached wallet
live): in one process directly, in a cluster forwarded there by the supervisor
(gameserver/admin.py). Money moves only as a ledger transaction against the zone's house
account, with the operator's idempotency key: the same key again posts nothing and
answers as the first time; the same key for another amount or player is refused. Every
change is written to the hash-chained audit log with the operator's name and reason.

Operations return `(HTTP status, JSON body)`; errors are `{"error": code, "message": ...}`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from prometheus_client.core import CounterMetricFamily

from persistence import InsufficientFunds, PersistenceError, StoreBusy, StoreUnavailable
from persistence.records import AuditEntry, Ban, PostingKind, transfer
from protocol.codes import CloseCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from rooms.outputs import Disconnect, Send

from .casino import account_id, txn_key
from .hub import GUEST_ID_BASE
from .rewards.service import Rewards, payments_account

if TYPE_CHECKING:
    from persistence import Stores

    from .hub import Hub

logger = logging.getLogger("croupier.backoffice")
Answer = tuple[int, dict[str, Any]]
#: the longest operator key, and reason, accepted
MAX_KEY, MAX_REASON = 64, 255
_enc = msgspec.json.Encoder()


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": code, "message": message}


class Adjustment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../adjust`: `amount` in minor units (negative: a debit), the operator's
    idempotency `key`, and why."""

    amount: int
    key: str
    reason: str


class Payment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../deposit` and `.../withdraw`, from the payment integration: a positive
    `amount` in minor units and the provider's `reference` (its transaction id: the
    idempotency key)."""

    amount: Annotated[int, msgspec.Meta(gt=0)]
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class Exclusion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../exclude`: exclude the player from play for `seconds` (an exclusion the
    operator imposes: as a confirmed self-exclusion), and why."""

    seconds: Annotated[int, msgspec.Meta(gt=0, le=100 * 365 * 86400)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON)]


class Moderation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../kick` and `.../ban`: why; `hours` for a ban (0: the zone's default, 24)."""

    reason: str = ""
    hours: float = 0.0


class Announcement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /admin/zones/<zone>/message`: the text every online user of the zone gets."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class BackOffice:
    """The operations, on one worker's hub (one instance per hub: `of`). Registered on the
    hub as a service without requests, for its metrics."""

    request_types: frozenset[type] = frozenset()

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        #: operations by (op, HTTP status); money moved by (currency, direction)
        self.operations: Counter[tuple[str, int]] = Counter()
        self.moved: Counter[tuple[str, str]] = Counter()

    @classmethod
    def of(cls, hub: Hub) -> BackOffice:
        """The hub's back office (created and registered on first use)."""
        for service in hub.service_list:
            if isinstance(service, BackOffice):
                return service
        office = cls(hub)
        hub.register(office)
        return office

    def handle(self, player: Any, req: Any) -> None:  # no requests of its own
        raise NotImplementedError

    def player_joined(self, player: Any) -> None:
        pass

    def player_left(self, player: Any) -> None:
        pass

    async def drain(self) -> None:
        pass

    def metric_families(self) -> Iterator[CounterMetricFamily]:
        """Prometheus families, read at scrape time (gameserver/metrics.py)."""
        ops = CounterMetricFamily(
            "croupier_backoffice_operations", "Back-office operations run here", labels=["op", "status"]
        )
        for (op, status), n in sorted(self.operations.items()):
            ops.add_metric([op, str(status)], n)
        yield ops
        moved = CounterMetricFamily(
            "croupier_backoffice_adjusted",
            "Money moved by operators' adjustments (minor units)",
            labels=["currency", "direction"],
        )
        for (currency, direction), amount in sorted(self.moved.items()):
            moved.add_metric([currency, direction], amount)
        yield moved

    async def run(self, op: str, args: dict[str, Any]) -> Answer:
        """Run `op` (the routes of gameserver/admin.py name them) with `args`; counted by
        outcome. A parameter that is not a number where one is needed is a 400."""
        try:
            status, body = await self._run(op, args)
        except (ValueError, TypeError) as exc:
            status, body = _error(400, "bad_request", f"bad parameter: {exc}")
        self.operations[(op, status)] += 1
        return status, body

    def _stores(self) -> Stores | None:
        casino = self.hub.casino
        if casino is not None:
            return casino.stores
        zs = self.hub.zone_state
        return zs.stores if zs is not None else None

    def _rewards(self) -> Rewards | None:
        """The rewards service (it owns the money moves that keep sessions' balances true)."""
        return next((s for s in self.hub.service_list if isinstance(s, Rewards)), None)

    def _check(self, zone: str, user: int) -> Answer | None:
        if zone not in self.hub.zones:
            return _error(404, "zone_not_found", f"no zone {zone!r}")
        if not 0 < user < GUEST_ID_BASE:
            return _error(
                400, "bad_user", f"registered user ids are 1..{GUEST_ID_BASE - 1} (guests have no account)"
            )
        return None

    async def _run(self, op: str, args: dict[str, Any]) -> Answer:
        if op == "audit":
            after, limit = int(args.get("after", 0)), int(args.get("limit", 100))
            return await self.audit(after, limit, bool(args.get("verify")))
        if op in ("rooms", "message", "close_room"):
            zone = str(args.get("zone", ""))
            if zone not in self.hub.zones:
                return _error(404, "zone_not_found", f"no zone {zone!r}")
            if op == "rooms":
                return self.zone_rooms(zone, args.get("group"))
            if op == "close_room":
                return await self.close_room(zone, args.get("room"), str(args.get("actor", "")))
            try:
                note = msgspec.convert(args.get("body"), Announcement)
            except msgspec.ValidationError as exc:
                return _error(400, "bad_request", str(exc))
            return await self.announce(zone, note, str(args.get("actor", "")))
        zone, user = str(args.get("zone", "")), int(args.get("user", 0))
        bad = self._check(zone, user)
        if bad is not None:
            return bad
        try:
            if op == "player":
                return await self.player(zone, user)
            if op == "rounds":
                return await self.rounds(zone, user, int(args.get("limit", 20)), args.get("before"))
            if op == "ledger":
                return await self.ledger(zone, user, int(args.get("limit", 50)))
            if op == "adjust":
                body = msgspec.convert(args.get("body"), Adjustment)
                return await self.adjust(zone, user, body, str(args.get("actor", "")))
            if op in ("rg", "exclude"):
                ex = msgspec.convert(args.get("body") or {}, Exclusion) if op == "exclude" else None
                return await self.responsible(zone, user, ex, str(args.get("actor", "")))
            if op in ("deposit", "withdraw"):
                pay = msgspec.convert(args.get("body"), Payment)
                return await self.payment(op, zone, user, pay, str(args.get("actor", "")))
            if op in ("kick", "ban"):
                mod = msgspec.convert(args.get("body") or {}, Moderation)
                return await self.moderate(op, zone, user, mod, str(args.get("actor", "")))
            if op == "unban":
                return await self.unban(zone, user, str(args.get("actor", "")))
        except msgspec.ValidationError as exc:
            return _error(400, "bad_request", str(exc))
        except (StoreBusy, StoreUnavailable) as exc:
            return _error(503, "unavailable", f"the store is not available: {exc}")
        return _error(404, "not_found", f"no operation {op!r}")

    # -- reads ---------------------------------------------------------------------------

    async def player(self, zone: str, user: int) -> Answer:
        hub = self.hub
        online = hub.players.get((zone, user))
        out: dict[str, Any] = {"zone": zone, "user": user, "online": online is not None}
        if online is not None:
            out["name"] = online.name
            out["connected"] = online.conn is not None
        until = hub.zones[zone].bans.get(user)
        if until is not None and until > hub.clock.wall():
            out["banned_until"] = until if until != float("inf") else None
        stores = self._stores()
        casino = hub.casino
        zc = casino.zones.get(zone) if casino is not None else None
        if stores is not None and zc is not None:
            account = account_id(zone, user)
            balance = await stores.wallet.get_balance(account, zc.currency)
            out["account"] = account
            out["currency"] = zc.currency
            out["balance"] = balance.balance if balance is not None else None
            out["open_rounds"] = [r.round_id for r in await stores.rounds.open_rounds(account)]
        return 200, out

    async def rounds(self, zone: str, user: int, limit: int, before: Any) -> Answer:
        stores = self._stores()
        if stores is None:
            return _error(503, "no_store", "this server has no store")
        limit = max(1, min(limit, 200))
        records = await stores.rounds.history(
            account_id(zone, user), limit=limit, before=int(before) if before is not None else None
        )
        fields = ("round_id", "game_id", "bet", "win", "status", "currency", "created_at", "settled_at")
        rows = [{f: getattr(r, f) for f in fields} for r in records]
        return 200, {"rounds": [{**row, "status": str(row["status"])} for row in rows]}

    def zone_rooms(self, zone: str, group: Any = None) -> Answer:
        """The rooms hosted here (hidden ones too), with their members and owner."""
        rooms = []
        for r in self.hub.zones[zone].rooms.values():
            if group is not None and r.group != group:
                continue
            view = msgspec.to_builtins(r.view())
            rooms.append(
                {**view, "hidden": r.hidden, "owner": r.owner, "static": r.static, "members": r.members}
            )
        return 200, {"rooms": rooms, "players": sum(1 for z, _ in self.hub.players if z == zone)}

    async def close_room(self, zone: str, room: Any, actor: str) -> Answer:
        """Empty a room hosted here (a user-created one goes away); `closed` 0 if it is not
        hosted here (in a cluster every worker is asked)."""
        try:
            rid = int(room)
        except (TypeError, ValueError):
            return _error(400, "bad_room", "the room id is a number")
        z = self.hub.zones[zone]
        if rid not in z.rooms:
            return 200, {"closed": 0, "left": 0}
        data, outputs = z.close_room(rid)
        self.hub.router.deliver(zone, outputs)  # members on other workers are told too
        await self._audit("close_room", actor, zone, None, f"room {rid}", "")
        return 200, {"closed": 1, "left": len(data["left"])}

    async def announce(self, zone: str, note: Announcement, actor: str) -> Answer:
        """An admin message to every user of the zone whose session is here."""
        hub = self.hub
        recipients = [uid for z, uid in hub.players if z == zone]
        sent_by = {"id": 0, "name": actor or "operator", "role": 3}
        msg = {"from": sent_by, "text": note.text, "scope": "zone", "data": None}
        if recipients:
            hub.deliver(zone, [Send(recipients, OutEvent("admin_message", msg))])
        await self._audit("announce", actor, zone, None, note.text[:MAX_REASON], "")
        return 200, {"sent": len(recipients)}

    async def ledger(self, zone: str, user: int, limit: int) -> Answer:
        """The player's ledger postings in the zone's currency, newest first."""
        stores, casino = self._stores(), self.hub.casino
        zc = casino.zones.get(zone) if casino is not None else None
        if stores is None or zc is None:
            return _error(409, "no_casino", f"zone {zone!r} has no casino here")
        rows = await stores.wallet.postings(
            account_id(zone, user), zc.currency, limit=max(1, min(limit, 500))
        )
        return 200, {"postings": [{**msgspec.to_builtins(r), "kind": str(r.kind)} for r in rows]}

    async def audit(self, after: int, limit: int, verify: bool) -> Answer:
        """The audit log from `after` (its `seq`), oldest first; `verify`: check the hash chain."""
        stores = self._stores()
        if stores is None:
            return _error(503, "no_store", "this server has no store")
        entries = await stores.audit.entries(after_seq=max(0, after), limit=max(1, min(limit, 1000)))
        fields = ("seq", "at", "actor", "action", "target", "reason", "request_id", "hash")
        out: dict[str, Any] = {"entries": [{f: getattr(e, f) for f in fields} for e in entries]}
        if verify:
            broken = await stores.audit.verify_chain()
            out["chain"] = "intact" if broken is None else f"broken at seq {broken}"
        return 200, out

    # -- changes -------------------------------------------------------------------------

    async def adjust(self, zone: str, user: int, body: Adjustment, actor: str) -> Answer:
        """Credit (or debit) the player from the zone's house account, once per key."""
        hub, rewards = self.hub, self._rewards()
        zr = rewards.zones.get(zone) if rewards is not None else None
        if rewards is None or zr is None:
            return _error(409, "no_casino", f"zone {zone!r} has no casino here")
        zc = zr.casino
        if body.amount == 0 or not 0 < len(body.key) <= MAX_KEY or not 0 < len(body.reason) <= MAX_REASON:
            return _error(
                400, "bad_request", f"a non-zero amount, a key (1-{MAX_KEY}) and a reason (1-{MAX_REASON})"
            )
        account = account_id(zone, user)
        request = {"account": account, "amount": body.amount, "currency": zc.currency}
        amount = abs(body.amount)
        src, dst = (zc.house, account) if body.amount > 0 else (account, zc.house)
        key = txn_key("adjust", zone, "operator", body.key)  # hashed if too long for the column
        entries = transfer(src, dst, zc.currency, amount, PostingKind.ADJUST)
        reply = _enc.encode({**request, "reason": body.reason, "actor": actor})
        try:  # the online session's cached balance moves with the commit (`Rewards.move`)
            async with rewards.locked(account):
                result = await rewards.move(zr, key, entries, account, reply)
        except InsufficientFunds:
            return _error(409, "insufficient_funds", f"the balance does not cover a debit of {amount}")
        except PersistenceError as exc:
            if isinstance(exc, StoreBusy | StoreUnavailable):
                raise
            return _error(409, "rejected", str(exc))
        stored = msgspec.json.decode(result.reply) if result.reply else {}
        if {k: stored.get(k) for k in request} != request:
            return _error(409, "key_reused", f"key {body.key!r} was used for another adjustment")
        balance = result.balance(account, zc.currency)
        answer = {
            "key": body.key,
            "amount": body.amount,
            "currency": zc.currency,
            "balance": balance,
            "duplicate": result.duplicate,
        }
        if not result.duplicate:
            self.moved[(zc.currency, "credit" if body.amount > 0 else "debit")] += amount
            await self._audit("adjust", actor, zone, user, body.reason, key, after=answer)
            if (zone, user) in hub.players:
                data = {
                    "amount": body.amount,
                    "currency": zc.currency,
                    "balance": balance,
                    "reason": body.reason,
                }
                hub.deliver(zone, [Send([user], OutEvent("balance_adjusted", data))])
        return 200, answer

    async def responsible(self, zone: str, user: int, ex: Exclusion | None, actor: str) -> Answer:
        """The player's responsible-gaming state (limits, time-out, exclusion, activity), or
        an exclusion imposed on it (then its state)."""
        rewards = self._rewards()
        zr = rewards.zones.get(zone) if rewards is not None else None
        if rewards is None or zr is None:
            return _error(409, "no_casino", f"zone {zone!r} has no casino here")
        account = account_id(zone, user)
        if ex is None:
            return 200, await rewards.responsible.view(zr, account)
        try:
            view = await rewards.responsible.exclude_account(zr, account, ex.seconds)
        except RequestError as exc:
            return _error(409, exc.code.name.lower(), exc.message)
        await self._audit("exclude", actor, zone, user, ex.reason, "", after={"seconds": ex.seconds})
        return 200, view

    async def payment(self, op: str, zone: str, user: int, pay: Payment, actor: str) -> Answer:
        """A deposit confirmed by the payment provider (the rewards service credits it:
        deposit limits, deposit-match offers, referral qualification), or a withdrawal paid
        out (a debit of the cash balance to the zone's payments account). Once per reference."""
        hub, stores, casino = self.hub, self._stores(), self.hub.casino
        zc = casino.zones.get(zone) if casino is not None else None
        rewards = self._rewards()
        if stores is None or casino is None or zc is None or rewards is None:
            return _error(409, "no_casino", f"zone {zone!r} has no casino here")
        account = account_id(zone, user)
        try:
            if op == "deposit":
                done = await rewards.bonuses.deposit(zone, account, pay.amount, pay.reference)
                duplicate = bool(done.get("duplicate"))
                if duplicate:  # the same reference: the same player and amount, or refused
                    postings = await stores.wallet.txn_postings(f"deposit:{zone}:{pay.reference}")
                    if not any(p.account == account and p.amount == pay.amount for p in postings):
                        return _error(
                            409, "key_reused", f"reference {pay.reference!r} was used for another payment"
                        )
                    done = {"deposit": pay.reference, "amount": pay.amount, "granted": []}
            else:
                entries = transfer(
                    account, payments_account(zone), zc.currency, pay.amount, PostingKind.WITHDRAW
                )
                reply = _enc.encode({"account": account, "amount": pay.amount, "reference": pay.reference})
                zr = rewards.zones[zone]
                async with rewards.locked(account):
                    result = await rewards.move(
                        zr, f"withdraw:{zone}:{pay.reference}", entries, account, reply
                    )
                stored = msgspec.json.decode(result.reply) if result.reply else {}
                if stored.get("account") != account or stored.get("amount") != pay.amount:
                    return _error(
                        409, "key_reused", f"reference {pay.reference!r} was used for another payment"
                    )
                duplicate = result.duplicate
                done = {"withdraw": pay.reference, "amount": pay.amount}
        except InsufficientFunds:
            return _error(
                409, "insufficient_funds", f"the balance does not cover a withdrawal of {pay.amount}"
            )
        except RequestError as exc:  # a deposit limit, a time-out or an exclusion (RG)
            return _error(409, exc.code.name.lower(), exc.message)
        balance = await stores.wallet.get_balance(account, zc.currency)
        answer = {**done, "currency": zc.currency, "balance": balance.balance if balance else None}
        answer["duplicate"] = duplicate
        if not duplicate:
            self.moved[(zc.currency, op)] += pay.amount
            await self._audit(
                op, actor, zone, user, pay.reference, f"{op}:{zone}:{pay.reference}", after=answer
            )
            if (zone, user) in hub.players:
                data = {
                    "kind": op,
                    "amount": pay.amount,
                    "currency": zc.currency,
                    "balance": answer["balance"],
                }
                hub.deliver(zone, [Send([user], OutEvent("payment", data))])
        return 200, answer

    async def moderate(self, what: str, zone: str, user: int, mod: Moderation, actor: str) -> Answer:
        """Kick the player (if online), or ban it for `hours` (and kick it)."""
        hub = self.hub
        z = hub.zones[zone]
        online = (zone, user) in hub.players
        out: dict[str, Any] = {"user": user, "online": online}
        by = {"by": 0, "reason": mod.reason}
        if what == "ban":
            hours = mod.hours if mod.hours > 0 else 24.0
            until = hub.clock.wall() + hours * 3600
            z.bans[user] = until
            stores = self._stores()
            if stores is not None:
                at = int(hub.clock.wall() * 1000)
                ban = Ban(zone=zone, kind="user", value=str(user), until=int(until * 1000), reason=mod.reason,
                          created_by=f"operator:{actor}", created_at=at)  # fmt: skip
                await stores.blacklist.add_ban(ban)
            out["until"] = int(until)
            note, code = OutEvent("banned", {**by, "until": int(until)}), CloseCode.BANNED
        else:
            note, code = OutEvent("kicked", by), CloseCode.KICKED
        if online:
            hub.deliver(zone, [Send([user], note), Disconnect(user, code, mod.reason)])
        await self._audit(what, actor, zone, user, mod.reason, "")
        return 200, out

    async def unban(self, zone: str, user: int, actor: str) -> Answer:
        hub = self.hub
        was = hub.zones[zone].bans.pop(user, None) is not None
        stores = self._stores()
        if stores is not None:
            was = await stores.blacklist.remove_ban(zone, "user", str(user)) or was
        if was:
            await self._audit("unban", actor, zone, user, "", "")
        return 200, {"user": user, "unbanned": was}

    async def _audit(
        self,
        action: str,
        actor: str,
        zone: str,
        user: int | None,
        reason: str,
        request_id: str,
        after: Any = None,
    ) -> None:
        stores = self._stores()
        if stores is None:
            return
        entry = AuditEntry(
            actor=f"operator:{actor}",
            action=action,
            target=zone if user is None else f"{zone}:{user}",
            after=_enc.encode(after) if after is not None else b"",
            reason=reason,
            request_id=request_id,
            at=int(self.hub.clock.wall() * 1000),
        )
        try:
            await stores.audit.append(entry)
        except PersistenceError as exc:  # the change is made; its record is retried by no one
            logger.error("could not write the audit record of %s on %s:%s: %s", action, zone, user, exc)
