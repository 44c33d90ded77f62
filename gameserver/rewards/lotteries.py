"""Lotteries over the protocol: scheduled commit-reveal draws, tickets, prizes once.

State (store table `lotteries`, msgpack bodies):

- `lottery:<zone>:<lottery>` — the schedule's state: the draw on sale, the last drawn one
  and the pool rolled over into the next draw;
- `draw:<draw id>` (draw id `<zone>:<lottery>:<n>`) — the draw, its secret seed (shown
  only once drawn), then its result and the exact ticket set it was drawn over; status
  `open` → `drawn` → `paid`. Writes are conditional on the document version, so two
  workers (or a tick that runs twice) never draw twice;
- `tickets:<draw id>:<account>` (owner = the draw id) — one player's tickets for a draw,
  each with the key of the transaction that paid for it.

A ticket counts only if its payment committed: a purchase writes its tickets (marked
unconfirmed) first, then commits the payment, then marks them confirmed; the draw checks
the unconfirmed ones against the ledger. Prizes are posted one transaction per winning
ticket under `lottery:<draw id>:<ticket id>`, so paying again after a crash or on a
second worker posts nothing new.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from games.lottery import (
    Draw,
    DrawResult,
    LotteryConfig,
    LotteryError,
    Ticket,
    buy_ticket,
    new_seed,
    open_draw,
    run_draw,
    tier_probabilities,
    verify_draw,
)
from persistence import Conflict, Document, PostingKind, transfer
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from ..config import LotterySchedule
from .service import Ctx, ZoneRewards, short_hash

if TYPE_CHECKING:
    from .service import Rewards

logger = logging.getLogger("croupier.rewards.lottery")


class LotteryState(msgspec.Struct, kw_only=True):
    current: int | None = None  # index of the draw opened last
    last_drawn: int | None = None
    rollover: int = 0  # rolled into the next draw to open


class DrawDoc(msgspec.Struct, kw_only=True):
    zone: str
    lottery: str
    index: int
    draw: Draw
    seed: str  # hex; secret until the draw
    result: DrawResult | None = None
    tickets: tuple[Ticket, ...] = ()


class TicketEntry(msgspec.Struct, kw_only=True):
    ticket: Ticket
    txn: str
    confirmed: bool = False


class PlayerTickets(msgspec.Struct, kw_only=True):
    account: str
    entries: list[TicketEntry] = []


DrawStatus = Literal["open", "drawn", "paid"]


def _dec(doc: Document, t: type[Any]) -> Any:
    return msgspec.msgpack.decode(doc.body, type=t)


_enc = msgspec.msgpack.encode


class Lotteries:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        self.docs = svc.stores.lotteries

    def handlers(self) -> dict[type, Any]:
        return {
            rm.LotteryList: self.listing,
            rm.LotteryBuy: self.buy,
            rm.LotteryResults: self.results,
            rm.LotteryVerify: self.verify,
        }

    # -- schedule ------------------------------------------------------------------------

    @staticmethod
    def window(sched: LotterySchedule, index: int) -> tuple[int, int, int]:
        """`(opens_at, cutoff_at, draws_at)` of draw `index`, epoch ms."""
        opens = (sched.start_s + index * sched.period_s) * 1000
        draws = opens + sched.period_s * 1000
        return opens, draws - sched.cutoff_s * 1000, draws

    async def _state(self, zr: ZoneRewards, lottery: str) -> tuple[LotteryState, int]:
        doc = await self.docs.get(f"lottery:{zr.zone}:{lottery}")
        if doc is None:
            return LotteryState(), 0
        return _dec(doc, LotteryState), doc.version

    async def _put_state(self, zr: ZoneRewards, lottery: str, state: LotteryState, version: int) -> bool:
        doc = Document(id=f"lottery:{zr.zone}:{lottery}", body=_enc(state))
        try:
            await self.docs.put(doc, expected_version=version)
            return True
        except Conflict:
            return False  # another worker moved it on: the next tick reads its state

    async def _draw_doc(self, draw_id: str) -> tuple[DrawDoc, Document] | None:
        doc = await self.docs.get(f"draw:{draw_id}")
        return None if doc is None else (_dec(doc, DrawDoc), doc)

    async def tick(self, zr: ZoneRewards, now: int) -> None:
        for name, (sched, config) in zr.lotteries.items():
            try:
                await self._tick_one(zr, name, sched, config, now)
            except Exception:
                logger.exception("lottery %s/%s: tick failed", zr.zone, name)

    async def _tick_one(
        self, zr: ZoneRewards, name: str, sched: LotterySchedule, config: LotteryConfig, now: int
    ) -> None:
        state, version = await self._state(zr, name)
        if state.current is not None:
            found = await self._draw_doc(f"{zr.zone}:{name}:{state.current}")
            if found is not None:
                dd, doc = found
                if doc.status == "open" and now >= dd.draw.draws_at:
                    dd, doc = await self._run(zr, config, dd, doc)
                if doc.status == "drawn":
                    await self._pay(zr, dd, doc)
                if doc.status == "open":
                    return  # still on sale
                if state.last_drawn != state.current:
                    assert dd.result is not None
                    state.last_drawn, state.rollover = state.current, dd.result.rollover_out
                    if not await self._put_state(zr, name, state, version):
                        return
                    version += 1
        if now < sched.start_s * 1000:
            return
        index = (now // 1000 - sched.start_s) // sched.period_s
        opens, cutoff, draws = self.window(sched, index)
        if state.current is not None and index <= state.current:
            return
        if now >= cutoff or (sched.end_s is not None and opens >= sched.end_s * 1000):
            return  # too late to sell this one (the server was down): wait for the next
        draw_id = f"{zr.zone}:{name}:{index}"
        seed = new_seed(self.svc.rng)
        draw = open_draw(config, draw_id, opens, cutoff, draws, seed, rollover_in=state.rollover)
        dd = DrawDoc(zone=zr.zone, lottery=name, index=index, draw=draw, seed=seed.hex())
        with contextlib.suppress(Conflict):  # else opened by another worker, with its seed: adopt it
            await self.docs.put(
                Document(
                    id=f"draw:{draw_id}", owner=f"draws:{zr.zone}:{name}"[:64], status="open", body=_enc(dd)
                ),
                expected_version=0,
            )
        state.current, state.rollover = index, 0
        await self._put_state(zr, name, state, version)

    async def _tickets(self, draw_id: str) -> list[TicketEntry]:
        docs = await self.docs.by_owner(draw_id)
        entries: list[TicketEntry] = []
        for doc in docs:
            entries.extend(_dec(doc, PlayerTickets).entries)
        return entries

    async def _run(
        self, zr: ZoneRewards, config: LotteryConfig, dd: DrawDoc, doc: Document
    ) -> tuple[DrawDoc, Document]:
        """Draw once: the result is written conditionally on the open document's version."""
        tickets: list[Ticket] = []
        for entry in await self._tickets(dd.draw.draw_id):
            if entry.confirmed or await self.svc.stores.wallet.get_txn(entry.txn) is not None:
                tickets.append(entry.ticket)
        tickets.sort(key=lambda t: t.ticket_id)
        result = run_draw(config, dd.draw, bytes.fromhex(dd.seed), tickets)
        dd = msgspec.structs.replace(dd, result=result, tickets=tuple(tickets))
        new = msgspec.structs.replace(doc, status="drawn", body=_enc(dd))
        try:
            stored = await self.docs.put(new, expected_version=doc.version)
        except Conflict:  # drawn by another worker: use its (identical) stored result
            found = await self._draw_doc(dd.draw.draw_id)
            assert found is not None
            return found
        logger.info("lottery draw %s: %s, %d tickets", dd.draw.draw_id, result.numbers, len(tickets))
        return dd, stored

    async def _pay(self, zr: ZoneRewards, dd: DrawDoc, doc: Document) -> None:
        assert dd.result is not None
        for win in dd.result.wins:
            if win.amount <= 0:
                continue
            key = f"lottery:{dd.draw.draw_id}:{win.ticket_id}"
            entries = transfer(zr.house, win.player, zr.currency, win.amount, PostingKind.PRIZE)
            await self.svc.move(zr, key, entries, win.player)
        with contextlib.suppress(Conflict):
            await self.docs.put(msgspec.structs.replace(doc, status="paid"), expected_version=doc.version)

    # -- requests ------------------------------------------------------------------------

    def _lottery(self, zr: ZoneRewards, name: str) -> tuple[LotterySchedule, LotteryConfig]:
        found = zr.lotteries.get(name)
        if found is None:
            raise RequestError(ErrorCode.LOTTERY_NOT_FOUND, f"no lottery {name!r} in this zone")
        return found

    async def listing(self, zr: ZoneRewards, ctx: Ctx, req: rm.LotteryList) -> dict[str, Any]:
        out = []
        for name, (sched, config) in zr.lotteries.items():
            state, _ = await self._state(zr, name)
            on_sale = None
            if state.current is not None:
                found = await self._draw_doc(f"{zr.zone}:{name}:{state.current}")
                if found is not None and found[1].status == "open":
                    dd = found[0]
                    mine = await self._mine(dd.draw.draw_id, ctx.account)
                    on_sale = {**_draw_info(dd.draw), "my_tickets": [list(t.numbers) for t in mine]}
            out.append(
                {
                    "lottery": name,
                    "version": config.version,
                    "numbers": config.numbers,
                    "picks": config.picks,
                    "ticket_price": config.ticket_price,
                    "max_tickets_per_player": config.max_tickets_per_player,
                    "pool_bp": config.pool_bp,
                    "tiers": [msgspec.to_builtins(t) for t in config.tiers],
                    "odds": {str(m): str(p) for m, p in tier_probabilities(config).items()},
                    "period_s": sched.period_s,
                    "cutoff_s": sched.cutoff_s,
                    "draw": on_sale,
                    "last_draw": None if state.last_drawn is None else f"{zr.zone}:{name}:{state.last_drawn}",
                }
            )
        return {"currency": zr.currency, "lotteries": out}

    async def _mine(self, draw_id: str, account: str) -> list[Ticket]:
        doc = await self.docs.get(f"tickets:{draw_id}:{account}")
        if doc is None:
            return []
        return [e.ticket for e in _dec(doc, PlayerTickets).entries if e.confirmed]

    async def buy(self, zr: ZoneRewards, ctx: Ctx, req: rm.LotteryBuy) -> dict[str, Any]:
        sched, config = self._lottery(zr, req.lottery)
        key = ctx.key("lot")
        check = ["lottery_buy", req.lottery, [list(t) for t in req.tickets]]
        async with self.svc.locked(ctx.account):
            done = await self.svc.stores.wallet.get_txn(key)
            if done is not None:  # a retry: the original reply and balance
                data = self.svc.replay(done, check)
                data["balance"] = done.balance(ctx.account, zr.currency)
                return data
            await self.svc.entry_allowed(zr, ctx.account, "lottery_ticket")
            now = self.svc.now()
            state, _ = await self._state(zr, req.lottery)
            found = None
            if state.current is not None:
                found = await self._draw_doc(f"{zr.zone}:{req.lottery}:{state.current}")
            if found is None or found[1].status != "open":
                raise RequestError(ErrorCode.SALES_CLOSED, "no draw is on sale")
            draw = found[0].draw
            if not draw.opens_at <= now < draw.cutoff_at:
                raise RequestError(ErrorCode.SALES_CLOSED, "sales are closed for this draw")
            doc_id = f"tickets:{draw.draw_id}:{ctx.account}"
            doc = await self.docs.get(doc_id)
            held = PlayerTickets(account=ctx.account) if doc is None else _dec(doc, PlayerTickets)
            # tickets written by an earlier attempt of this request whose payment did not commit
            retry = [e for e in held.entries if e.txn == key]
            if retry:
                new = retry
            else:
                new = []
                valid = [e.ticket for e in held.entries if e.confirmed]
                for i, numbers in enumerate(req.tickets):
                    try:
                        ticket = buy_ticket(
                            config,
                            draw,
                            valid,
                            ticket_id=f"{short_hash(key)}.{i}",
                            player=ctx.account,
                            numbers=numbers,
                            now=now,
                        )
                    except LotteryError as exc:
                        raise _ticket_error(exc) from None
                    valid.append(ticket)
                    new.append(TicketEntry(ticket=ticket, txn=key))
                held.entries.extend(new)
                body = Document(id=doc_id, owner=draw.draw_id, body=_enc(held))
                try:
                    doc = await self.docs.put(body, expected_version=0 if doc is None else doc.version)
                except Conflict:
                    raise RequestError(ErrorCode.BUSY, "tickets changed meanwhile: retry") from None
            cost = config.ticket_price * len(new)
            reply = {
                "draw": draw.draw_id,
                "tickets": [{"ticket": e.ticket.ticket_id, "numbers": list(e.ticket.numbers)} for e in new],
                "cost": cost,
                "draws_at": draw.draws_at,
                "commitment": draw.commitment,
            }
            entries = transfer(ctx.account, zr.house, zr.currency, cost, PostingKind.TRANSFER)
            result = await self.svc.move(zr, key, entries, ctx.account, self.svc.encode_reply(check, reply))
            for e in held.entries:
                if e.txn == key:
                    e.confirmed = True
            assert doc is not None
            with contextlib.suppress(Conflict):  # else confirmed later by the draw, from the ledger
                await self.docs.put(
                    Document(id=doc_id, owner=draw.draw_id, body=_enc(held)), expected_version=doc.version
                )
            data = self.svc.replay(result, check)
            data["balance"] = result.balance(ctx.account, zr.currency)
            return data

    async def _drawn(self, zr: ZoneRewards, draw_id: str) -> tuple[DrawDoc, Document]:
        found = await self._draw_doc(draw_id) if draw_id.startswith(f"{zr.zone}:") else None
        if found is None:
            raise RequestError(ErrorCode.LOTTERY_NOT_FOUND, f"no draw {draw_id!r}")
        if found[0].result is None:
            raise RequestError(ErrorCode.DRAW_PENDING, f"draw {draw_id} has not happened yet")
        return found

    async def results(self, zr: ZoneRewards, ctx: Ctx, req: rm.LotteryResults) -> dict[str, Any]:
        self._lottery(zr, req.lottery)
        draw_id = req.draw
        if draw_id is None:
            state, _ = await self._state(zr, req.lottery)
            if state.last_drawn is None:
                raise RequestError(ErrorCode.DRAW_PENDING, "no draw of this lottery has happened yet")
            draw_id = f"{zr.zone}:{req.lottery}:{state.last_drawn}"
        dd, doc = await self._drawn(zr, draw_id)
        result = dd.result
        assert result is not None
        drawn = set(result.numbers)
        won = {w.ticket_id: w.amount for w in result.wins}
        tiers: dict[str, dict[str, int]] = {}
        for w in result.wins:
            tier = tiers.setdefault(str(w.match), {"winners": 0, "paid": 0})
            tier["winners"] += 1
            tier["paid"] += w.amount
        mine = [
            {
                "ticket": t.ticket_id,
                "numbers": list(t.numbers),
                "match": len(drawn.intersection(t.numbers)),
                "prize": won.get(t.ticket_id, 0),
            }
            for t in dd.tickets
            if t.player == ctx.account
        ]
        return {
            **_draw_info(dd.draw),
            "numbers": list(result.numbers),
            "seed": result.seed,
            "tickets": len(dd.tickets),
            "sales": result.sales,
            "pool": result.pool,
            "rollover_out": result.rollover_out,
            "tiers": tiers,
            "my_tickets": mine,
            "my_prize": sum(t["prize"] for t in mine),
            "paid": doc.status == "paid",  # every prize credited (drawn, then paid by the draw)
        }

    async def verify(self, zr: ZoneRewards, ctx: Ctx, req: rm.LotteryVerify) -> dict[str, Any]:
        dd, _ = await self._drawn(zr, req.draw)
        _, config = self._lottery(zr, dd.lottery)
        result = dd.result
        assert result is not None
        return {
            "lottery": msgspec.to_builtins(config),
            "draw": msgspec.to_builtins(dd.draw),
            "result": msgspec.to_builtins(result),
            "tickets": [msgspec.to_builtins(t) for t in dd.tickets],
            "verified": verify_draw(config, dd.draw, result, dd.tickets),
        }


def _draw_info(draw: Draw) -> dict[str, Any]:
    return {
        "draw": draw.draw_id,
        "opens_at": draw.opens_at,
        "cutoff_at": draw.cutoff_at,
        "draws_at": draw.draws_at,
        "commitment": draw.commitment,
        "rollover_in": draw.rollover_in,
    }


def _ticket_error(exc: LotteryError) -> RequestError:
    text = str(exc)
    if "limit" in text:
        return RequestError(ErrorCode.TICKET_LIMIT, text)
    if "closed" in text:
        return RequestError(ErrorCode.SALES_CLOSED, text)
    return RequestError(ErrorCode.BAD_TICKET, text)
