"""Pure money rules for one batch of transactions (no I/O).

Every backend runs a batch the same way, inside one database transaction:

1. load the results already stored for the batch's keys (duplicates),
2. load and lock the balances of the touched accounts and the touched rounds,
3. call :func:`plan_batch`, which applies the transactions *in order* to those
   balances, refuses the ones that break a rule, and returns what to write,
4. write the plan (transaction rows, ledger rows, balance deltas, rounds) and COMMIT.

Rules (WAL-1..WAL-5):
- entries are applied in order; after each debit a non-negative account must stay
  >= 0, so a bet must be covered before its win is credited;
- an account that does not exist yet is created by its first credit (never
  by a debit); house accounts must be opened with ``allow_negative=True``;
- a round record may be inserted (any status) or rewrite an *open* round of the
  same user; a settled or voided round is immutable;
- a key already committed returns the stored result with ``duplicate=True``; a
  key seen twice in one batch resolves both callers to the first result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from persistence.errors import InsufficientFunds, PersistenceError, RoundConflict
from persistence.records import BalanceAfter, RoundRecord, RoundStatus, Txn, TxnResult

__all__ = ["AccountState", "BatchPlan", "RoundState", "decode_result", "encode_result", "plan_batch"]

AccountKey = tuple[str, str]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TxnResult)


def encode_result(result: TxnResult) -> bytes:
    """The stored form of a committed result (``duplicate`` is always stored False)."""
    return _encoder.encode(result)


def decode_result(blob: bytes) -> TxnResult:
    """A stored result, as returned to a duplicate: ``duplicate=True``."""
    return msgspec.structs.replace(_decoder.decode(blob), duplicate=True)


@dataclass(slots=True)
class AccountState:
    balance: int
    allow_negative: bool = False


@dataclass(slots=True)
class RoundState:
    user_id: str
    status: RoundStatus


@dataclass(slots=True)
class BatchPlan:
    """What to write for a batch, and each caller's outcome (same order as the input)."""

    outcomes: list[TxnResult | PersistenceError]
    accepted: list[tuple[Txn, TxnResult]] = field(default_factory=list)
    deltas: dict[AccountKey, int] = field(default_factory=dict)
    new_accounts: set[AccountKey] = field(default_factory=set)
    round_inserts: dict[str, RoundRecord] = field(default_factory=dict)
    round_updates: dict[str, RoundRecord] = field(default_factory=dict)
    balances: dict[AccountKey, AccountState] = field(default_factory=dict)


def _stamp_round(rec: RoundRecord, now: int) -> RoundRecord:
    settled = rec.settled_at
    if rec.status is not RoundStatus.OPEN and not settled:
        settled = now
    return msgspec.structs.replace(rec, created_at=rec.created_at or now, updated_at=now, settled_at=settled)


def _check_round(txn: Txn, rounds: Mapping[str, RoundState]) -> RoundConflict | None:
    rec = txn.round
    if rec is None:
        return None
    state = rounds.get(rec.round_id)
    if state is None:
        return None
    if state.user_id != rec.user_id:
        return RoundConflict(txn.key, f"round {rec.round_id!r} belongs to another user")
    if state.status is not RoundStatus.OPEN:
        return RoundConflict(txn.key, f"round {rec.round_id!r} is {state.status.value}")
    return None


def _apply_entries(
    txn: Txn, balances: dict[AccountKey, AccountState]
) -> tuple[dict[AccountKey, AccountState], InsufficientFunds | None]:
    """Apply ``txn``'s entries to copies of the touched states (the originals stay untouched)."""
    work: dict[AccountKey, AccountState] = {}
    for e in txn.entries:
        k = (e.account, e.currency)
        st = work.get(k)
        if st is None:
            cur = balances.get(k)
            st = AccountState(0, False) if cur is None else AccountState(cur.balance, cur.allow_negative)
            work[k] = st
        if e.amount < 0 and not st.allow_negative and st.balance + e.amount < 0:
            return work, InsufficientFunds(txn.key, e.account, e.currency, st.balance, e.amount)
        st.balance += e.amount
    return work, None


def plan_batch(
    txns: Sequence[Txn],
    *,
    stored: Mapping[str, bytes],
    balances: Mapping[AccountKey, AccountState],
    rounds: Mapping[str, RoundState],
    now: int,
) -> BatchPlan:
    """Decide every transaction of a batch against the locked current state.

    Args:
        txns: the batch, in submission order (already validated).
        stored: encoded results already committed for any of the batch's keys.
        balances: current state of every existing touched account.
        rounds: current state of every existing touched round.
        now: the commit timestamp (epoch ms).
    """
    plan = BatchPlan(outcomes=[])
    bal: dict[AccountKey, AccountState] = {
        k: AccountState(v.balance, v.allow_negative) for k, v in balances.items()
    }
    rnd: dict[str, RoundState] = dict(rounds)
    in_batch: dict[str, TxnResult] = {}
    for txn in txns:
        blob = stored.get(txn.key)
        if blob is not None:
            plan.outcomes.append(decode_result(blob))
            continue
        first = in_batch.get(txn.key)
        if first is not None:
            plan.outcomes.append(msgspec.structs.replace(first, duplicate=True))
            continue
        conflict = _check_round(txn, rnd)
        if conflict is not None:
            plan.outcomes.append(conflict)
            continue
        work, short = _apply_entries(txn, bal)
        if short is not None:
            plan.outcomes.append(short)
            continue
        for k, st in work.items():
            if k not in bal:
                plan.new_accounts.add(k)
            bal[k] = st
        for e in txn.entries:
            k = (e.account, e.currency)
            plan.deltas[k] = plan.deltas.get(k, 0) + e.amount
        round_id = ""
        if txn.round is not None:
            rec = txn.round
            round_id = rec.round_id
            if rec.round_id in rnd and rec.round_id not in plan.round_inserts:
                plan.round_updates[round_id] = _stamp_round(rec, now)
            else:
                prev = plan.round_inserts.get(round_id)
                stamped = _stamp_round(rec, now)
                if prev is not None:
                    stamped = msgspec.structs.replace(stamped, created_at=prev.created_at)
                plan.round_inserts[round_id] = stamped
            rnd[round_id] = RoundState(rec.user_id, rec.status)
        result = TxnResult(
            key=txn.key,
            committed_at=now,
            balances=tuple(BalanceAfter(a, c, st.balance) for (a, c), st in work.items()),
            reply=txn.reply,
            round_id=round_id,
        )
        in_batch[txn.key] = result
        plan.accepted.append((txn, result))
        plan.outcomes.append(result)
    plan.balances = bal
    return plan
