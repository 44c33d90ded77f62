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

Results report the balances of the non-negative (player) accounts a transaction
touched. House and bank accounts (``allow_negative``) are not reported: their
balance is not needed for any rule, so the SQL backends never lock them until the
final update, which lets concurrent batches overlap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from persistence.errors import InsufficientFunds, PersistenceError, RoundChanged, RoundConflict
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
    updated_at: int = 0


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
    if txn.round_base and state.updated_at != txn.round_base:
        return RoundChanged(txn.key, f"round {rec.round_id!r} was written after it was read")
    return None


def _apply_entries(
    txn: Txn, balances: Mapping[AccountKey, AccountState]
) -> tuple[dict[AccountKey, int], InsufficientFunds | None]:
    """The balances ``txn`` would leave, as plain ints (``balances`` is not changed)."""
    work: dict[AccountKey, int] = {}
    for e in txn.entries:
        k = (e.account, e.currency)
        b = work.get(k)
        if b is None:
            st = balances.get(k)
            b = 0 if st is None else st.balance
        amount = e.amount
        if amount < 0 and b + amount < 0:
            st = balances.get(k)
            if st is None or not st.allow_negative:
                return work, InsufficientFunds(txn.key, e.account, e.currency, b, amount)
        work[k] = b + amount
    return work, None


def plan_batch(
    txns: Sequence[Txn],
    *,
    stored: Mapping[str, bytes],
    balances: dict[AccountKey, AccountState],
    rounds: Mapping[str, RoundState],
    now: int,
) -> BatchPlan:
    """Decide every transaction of a batch against the locked current state.

    Args:
        txns: the batch, in submission order (already validated).
        stored: encoded results already committed for any of the batch's keys.
        balances: current state of every existing touched account. The plan takes
            ownership: the dict and its states are updated in place and end up as
            ``plan.balances``.
        rounds: current state of every existing touched round.
        now: the commit timestamp (epoch ms).
    """
    plan = BatchPlan(outcomes=[])
    outcomes, accepted, deltas, new_accounts = plan.outcomes, plan.accepted, plan.deltas, plan.new_accounts
    bal = balances
    rnd: dict[str, RoundState] = dict(rounds)
    in_batch: dict[str, TxnResult] = {}
    for txn in txns:
        key = txn.key
        blob = stored.get(key)
        if blob is not None:
            outcomes.append(decode_result(blob))
            continue
        first = in_batch.get(key)
        if first is not None:
            outcomes.append(msgspec.structs.replace(first, duplicate=True))
            continue
        rec = txn.round
        if rec is not None and rec.round_id in rnd:
            conflict = _check_round(txn, rnd)
            if conflict is not None:
                outcomes.append(conflict)
                continue
        work, short = _apply_entries(txn, bal)
        if short is not None:
            outcomes.append(short)
            continue
        after = []
        for k, b in work.items():
            st = bal.get(k)
            if st is None:
                bal[k] = AccountState(b, False)
                new_accounts.add(k)
                after.append(BalanceAfter(k[0], k[1], b))
            else:
                st.balance = b
                if not st.allow_negative:
                    after.append(BalanceAfter(k[0], k[1], b))
        for e in txn.entries:
            k = (e.account, e.currency)
            deltas[k] = deltas.get(k, 0) + e.amount
        round_id = ""
        if rec is not None:
            round_id = rec.round_id
            if round_id in rnd and round_id not in plan.round_inserts:
                plan.round_updates[round_id] = _stamp_round(rec, now)
            else:
                prev = plan.round_inserts.get(round_id)
                stamped = _stamp_round(rec, now)
                if prev is not None:
                    stamped = msgspec.structs.replace(stamped, created_at=prev.created_at)
                plan.round_inserts[round_id] = stamped
            rnd[round_id] = RoundState(rec.user_id, rec.status, now)
        result = TxnResult(
            key=key, committed_at=now, balances=tuple(after), reply=txn.reply, round_id=round_id
        )
        in_batch[key] = result
        accepted.append((txn, result))
        outcomes.append(result)
    plan.balances = bal
    return plan
