"""Referrals: codes, sign-up links, qualification, hold period, once per pair (REF-1, REF-2).

Documents (store table `referrals`):

- `code:<zone>:<code>` (owner = account) — a player's code; the code is derived from the
  account, so asking twice gives the same code;
- `ref:<referee account>` (owner = the referrer) — the pair, the referee's qualifying
  activity (wagered from settled rounds, deposits), both accounts' fraud signals at
  apply time, and the latest decision (`pending`, `holding`, `payable`, `paid`,
  `held_for_review`, `rejected`);
- `sig:<account>` — fraud signals seen at login (IP addresses with the time).

The decision is `games.referral.evaluate_referral`: a linked account (shared IP within
the window, device, payment instrument, e-mail pattern) or a referral cycle is *held for
review*, never paid automatically; the own code is refused at apply. Rewards are posted
under `referral:<referrer>:<referee>:referrer|referee`, so a pair is paid once.
Decisions are re-evaluated on the referee's settled rounds, when either player logs in
or asks for `referral_code`, and by the scheduler for referrals held on this worker.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from games.ledger import cash_account, house_account
from games.policy import check_entry
from games.referral import (
    AccountSignals,
    RefereeActivity,
    Referral,
    ReferralDecision,
    evaluate_referral,
    referral_postings,
)
from persistence import Conflict, Document, PostingKind
from persistence.records import Entry
from persistence.staged import StagedDocuments
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from ..domain import RoundSettled
from .service import Ctx, ZoneRewards

if TYPE_CHECKING:
    from .service import Rewards

_enc = msgspec.msgpack.encode
_MAX_IPS = 16
_RECENT_ROUNDS = 64


class CodeDoc(msgspec.Struct, kw_only=True):
    account: str


class RefDoc(msgspec.Struct, kw_only=True):
    referral: Referral
    activity: RefereeActivity = RefereeActivity()
    signals: tuple[AccountSignals, AccountSignals] = (AccountSignals(), AccountSignals())
    decision: ReferralDecision | None = None
    recent_rounds: tuple[str, ...] = ()
    paid_at: int | None = None


def code_of(zone: str, account: str) -> str:
    digest = hashlib.sha256(f"croupier-referral\x00{zone}\x00{account}".encode()).digest()
    return base64.b32encode(digest).decode()[:10]


def _ip(peer: str) -> str:
    host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer
    return host.strip("[]")


class Referrals:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        self.docs = svc.stores.referrals
        #: referee accounts holding (or payable) on this worker: re-evaluated by the tick
        self._holding: dict[str, str] = {}  # referee -> zone
        #: players on this worker known to have no referral still qualifying (no read per round)
        self._settled: set[str] = set()
        #: `ref:` documents, held by their referee's session: a round's activity is staged and
        #: written by the next flush (persistence/staged.py); decisions are written at once
        self.staged = StagedDocuments(self.docs, "referrals", holder=lambda d: d.id.removeprefix("ref:"))

    def forget(self, account: str) -> None:
        self._settled.discard(account)
        self.staged.forget(account)

    def handlers(self) -> dict[type, Any]:
        return {rm.ReferralCode: self.code, rm.ReferralApply: self.apply}

    # -- signals -------------------------------------------------------------------------

    async def _signals(self, account: str) -> AccountSignals:
        doc = await self.docs.get(f"sig:{account}")
        return AccountSignals() if doc is None else msgspec.msgpack.decode(doc.body, type=AccountSignals)

    async def joined(self, zr: ZoneRewards, account: str, peer: str) -> None:
        """Login: remember the IP address (a fraud signal) and re-check the player's referrals."""
        if zr.cfg.referral is None:
            return
        try:
            async with self.svc.locked(account):
                sig = await self._signals(account)
                ips = dict(sig.ips)
                ips[_ip(peer)] = self.svc.now()
                if len(ips) > _MAX_IPS:
                    ips = dict(sorted(ips.items(), key=lambda kv: kv[1])[-_MAX_IPS:])
                sig = msgspec.structs.replace(sig, ips=ips)
                await self.docs.put(Document(id=f"sig:{account}", owner=account, body=_enc(sig)))
                await self._reevaluate(zr, account)
        except Exception:  # a login never fails because of this
            import logging

            logging.getLogger("croupier.rewards.referral").exception("referral signals of %s", account)

    # -- evaluation ----------------------------------------------------------------------

    async def _referred_by(self, start: str) -> dict[str, str]:
        """Referee -> referrer edges up the chain from `start` (ring detection)."""
        edges: dict[str, str] = {}
        current = start
        for _ in range(32):
            doc = await self.docs.get(f"ref:{current}")
            if doc is None:
                break
            ref = msgspec.msgpack.decode(doc.body, type=RefDoc).referral
            edges[ref.referee] = ref.referrer
            current = ref.referrer
            if current in edges:
                break
        return edges

    async def _evaluate(self, zr: ZoneRewards, doc: Document, rd: RefDoc) -> Document:
        """Decide now; pay a payable pair once; store the decision."""
        rule = zr.cfg.referral
        assert rule is not None
        now = self.svc.now()
        ref = rd.referral
        policy = zr.casino.policy
        excluded = []
        for account in (ref.referrer, ref.referee):
            state = await self.svc.responsible.state(zr, account)
            excluded.append(not check_entry(policy, state, now, "referral_credit").allowed)
        signals = (
            msgspec.structs.replace(rd.signals[0], excluded=excluded[0]),
            msgspec.structs.replace(rd.signals[1], excluded=excluded[1]),
        )
        edges = await self._referred_by(ref.referrer)
        paid_keys = (
            frozenset({rd.decision.key})
            if rd.decision is not None and rd.decision.status == "paid"
            else frozenset()
        )
        period_start = now - rule.period_days * 86_400_000
        paid_in_period = sum(
            1
            for d in await self.docs.by_owner(ref.referrer, status="paid")
            if (msgspec.msgpack.decode(d.body, type=RefDoc).paid_at or 0) >= period_start
        )
        decision = evaluate_referral(rule, ref, rd.activity, signals, edges, paid_keys, paid_in_period, now)
        if decision.status == "payable":
            names = {
                cash_account(zr.zone, ref.referrer): ref.referrer,
                cash_account(zr.zone, ref.referee): ref.referee,
                house_account(zr.zone): zr.house,
            }
            for posting in referral_postings(zr.zone, zr.currency, rule, ref, decision):
                entries = tuple(
                    Entry(names[e.account], zr.currency, e.amount, PostingKind.BONUS) for e in posting.entries
                )
                player = next(names[e.account] for e in posting.entries if e.amount > 0)
                await self.svc.move(zr, posting.key, entries, player)
            decision = ReferralDecision(status="paid", key=decision.key)
            rd.paid_at = now
        if decision.status in ("holding", "pending") and decision != rd.decision:
            self._holding[ref.referee] = zr.zone
        elif decision.status not in ("holding", "pending"):
            self._holding.pop(ref.referee, None)
        if decision == rd.decision:
            return doc
        rd.decision = decision
        new = Document(id=doc.id, owner=ref.referrer, status=decision.status, body=_enc(rd))
        try:
            return await self.staged.put(new)
        except Conflict:
            return doc
        finally:
            if self.svc.wallet_of_account(ref.referee) is None:
                self.staged.forget(ref.referee)  # not playing here: keep no copy

    async def _reevaluate(self, zr: ZoneRewards, account: str) -> None:
        """Re-check the referral of `account` as referee and those it referred."""
        docs = [self.staged.latest(d) for d in await self.docs.by_owner(account) if d.id.startswith("ref:")]
        mine = await self.staged.get(f"ref:{account}", account)
        for doc in [*docs, *([mine] if mine is not None else [])]:
            if doc.status in ("holding", "pending", "payable", ""):
                await self._evaluate(zr, doc, msgspec.msgpack.decode(doc.body, type=RefDoc))

    async def on_round(self, zr: ZoneRewards, account: str, event: RoundSettled) -> None:
        """A referee's settled round counts towards qualification. Below the threshold its
        activity is staged (written by the next flush: a crash loses the last tick's rounds
        of it, as mission progress); the round that qualifies the referee is written at once
        and decided. Until then the decision stays `pending` (its deadline is checked at
        login, on `referral_code` and by the scheduler)."""
        rule = zr.cfg.referral
        if rule is None or event.stake <= 0 or account in self._settled:
            return
        for attempt in (1, 2):
            doc = await self.staged.get(f"ref:{account}", account)
            if doc is None or doc.status not in ("pending", "holding", "payable", ""):
                self._settled.add(account)  # `referral_apply` (on this worker) clears it
                return
            rd = msgspec.msgpack.decode(doc.body, type=RefDoc)
            if event.event_id in rd.recent_rounds:
                return
            act = rd.activity
            wagered = act.wagered + event.stake
            qualified_at = act.qualified_at
            if qualified_at is None and wagered >= rule.min_wagered and act.deposited >= rule.min_deposit:
                qualified_at = event.at_ms
            rd.activity = msgspec.structs.replace(act, wagered=wagered, qualified_at=qualified_at)
            rd.recent_rounds = (*rd.recent_rounds, event.event_id)[-_RECENT_ROUNDS:]
            new = msgspec.structs.replace(doc, body=_enc(rd))
            if qualified_at == act.qualified_at and rd.decision is not None:
                self.staged.stage(new)
                return
            try:
                doc = await self.staged.put(new)
            except Conflict:  # written elsewhere since this worker read it: read it again
                if attempt == 2:
                    raise
                continue
            await self._evaluate(zr, doc, rd)
            return

    async def on_deposit(self, zr: ZoneRewards, account: str, amount: int, at: int) -> None:
        """A referee's deposit counts towards qualification (caller holds the account lock)."""
        rule = zr.cfg.referral
        doc = await self.staged.get(f"ref:{account}", account)
        if rule is None or doc is None or doc.status not in ("pending", "holding", "payable", ""):
            return
        rd = msgspec.msgpack.decode(doc.body, type=RefDoc)
        act = rd.activity
        deposited = act.deposited + amount
        qualified_at = act.qualified_at
        if qualified_at is None and act.wagered >= rule.min_wagered and deposited >= rule.min_deposit:
            qualified_at = at
        rd.activity = msgspec.structs.replace(act, deposited=deposited, qualified_at=qualified_at)
        doc = await self.staged.put(msgspec.structs.replace(doc, body=_enc(rd)))
        await self._evaluate(zr, doc, rd)

    async def tick(self, now: int) -> None:
        for referee, zone in list(self._holding.items()):
            zr = self.svc.zones.get(zone)
            if zr is None:
                continue
            async with self.svc.locked(referee):
                doc = await self.staged.get(f"ref:{referee}", referee)
                if doc is None:
                    self._holding.pop(referee, None)
                    continue
                await self._evaluate(zr, doc, msgspec.msgpack.decode(doc.body, type=RefDoc))

    # -- requests ------------------------------------------------------------------------

    def _rule(self, zr: ZoneRewards) -> None:
        if zr.cfg.referral is None:
            raise RequestError(ErrorCode.NOT_SUPPORTED, "this zone has no referral programme")

    async def code(self, zr: ZoneRewards, ctx: Ctx, req: rm.ReferralCode) -> dict[str, Any]:
        self._rule(zr)
        code = code_of(zr.zone, ctx.account)
        async with self.svc.locked(ctx.account):
            doc_id = f"code:{zr.zone}:{code}"
            if await self.docs.get(doc_id) is None:
                await self.docs.put(
                    Document(id=doc_id, owner=ctx.account, body=_enc(CodeDoc(account=ctx.account)))
                )
            await self._reevaluate(zr, ctx.account)
            referred = []
            for stored in await self.docs.by_owner(ctx.account):
                if not stored.id.startswith("ref:"):
                    continue
                doc = self.staged.latest(stored)
                rd = msgspec.msgpack.decode(doc.body, type=RefDoc)
                d = rd.decision
                referred.append(
                    {
                        "since": rd.referral.created_at,
                        "status": doc.status,
                        "reason": None if d is None else d.reason,
                        "release_at": None if d is None else d.release_at,
                    }
                )
            mine = await self.staged.get(f"ref:{ctx.account}", ctx.account)
            rule = zr.cfg.referral
            assert rule is not None
            return {
                "code": code,
                "referred": referred,
                "referred_by_status": None if mine is None else mine.status,
                "rules": {
                    "min_deposit": rule.min_deposit,
                    "min_wagered": rule.min_wagered,
                    "within_days": rule.within_days,
                    "hold_days": rule.hold_days,
                    "reward_referrer": rule.reward_referrer,
                    "reward_referee": rule.reward_referee,
                },
            }

    async def apply(self, zr: ZoneRewards, ctx: Ctx, req: rm.ReferralApply) -> dict[str, Any]:
        self._rule(zr)
        code_doc = await self.docs.get(f"code:{zr.zone}:{req.code.upper()}")
        if code_doc is None:
            raise RequestError(ErrorCode.REFERRAL_INVALID, "unknown referral code")
        referrer = msgspec.msgpack.decode(code_doc.body, type=CodeDoc).account
        if referrer == ctx.account:
            raise RequestError(ErrorCode.REFERRAL_INVALID, "that is your own code")
        async with self.svc.locked(ctx.account):
            await self.svc.entry_allowed(zr, ctx.account, "referral_credit")
            now = self.svc.now()
            rd = RefDoc(
                referral=Referral(referrer=referrer, referee=ctx.account, created_at=now),
                signals=(await self._signals(referrer), await self._signals(ctx.account)),
            )
            doc_id = f"ref:{ctx.account}"
            exists = RequestError(ErrorCode.REFERRAL_EXISTS, "you were already referred")
            if await self.staged.get(doc_id, ctx.account) is not None:
                raise exists
            try:  # against version 0: another worker may have written it since
                doc = await self.staged.put(
                    Document(id=doc_id, owner=referrer, status="pending", body=_enc(rd))
                )
            except Conflict:
                raise exists from None
            self._settled.discard(ctx.account)
            doc = await self._evaluate(zr, doc, rd)
            rd = msgspec.msgpack.decode(doc.body, type=RefDoc)
            d = rd.decision
            return {
                "status": doc.status,
                "reason": None if d is None else d.reason,
                "release_at": None if d is None else d.release_at,
            }
