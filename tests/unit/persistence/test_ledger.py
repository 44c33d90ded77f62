"""plan_batch, the pure money rules every backend runs (WAL-1, WAL-2, WAL-4)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from persistence import (
    InsufficientFunds,
    PostingKind,
    RoundConflict,
    RoundRecord,
    RoundStatus,
    Txn,
    TxnResult,
)
from persistence.ledger import AccountState, RoundState, encode_result, plan_batch
from persistence.records import spin_txn, transfer

NOW = 1_000


def dep(key: str, user: str, amount: int) -> Txn:
    return Txn(key=key, entries=transfer("house", user, "EUR", amount, PostingKind.DEPOSIT))


def house() -> dict[tuple[str, str], AccountState]:
    """A fresh balances map with the house account (plan_batch updates it in place)."""
    return {("house", "EUR"): AccountState(0, allow_negative=True)}


def test_accepted_txns_produce_net_deltas_and_new_accounts() -> None:
    """Deltas are netted per account; accounts first credited are listed as new."""
    plan = plan_batch(
        [dep("a", "u1", 100), dep("b", "u1", 50)], stored={}, balances=house(), rounds={}, now=NOW
    )
    assert plan.deltas == {("house", "EUR"): -150, ("u1", "EUR"): 150}
    assert plan.new_accounts == {("u1", "EUR")}
    assert [r.balance("u1", "EUR") for _, r in plan.accepted] == [100, 150]


def test_stored_keys_come_back_as_duplicates_with_their_stored_result() -> None:
    """A key already committed returns the stored result and adds nothing to the plan."""
    original = TxnResult(key="a", committed_at=5, reply=b"r")
    plan = plan_batch(
        [dep("a", "u1", 999)], stored={"a": encode_result(original)}, balances=house(), rounds={}, now=NOW
    )
    [out] = plan.outcomes
    assert isinstance(out, TxnResult) and out.duplicate and (out.committed_at, out.reply) == (5, b"r")
    assert plan.accepted == [] and plan.deltas == {}


def test_a_rejected_key_may_be_retried_in_the_same_batch() -> None:
    """Only committed keys are remembered: a refused txn's key can succeed later in the batch."""
    txns = [spin_txn("k", player="u1", house="house", currency="EUR", bet=10, win=0), dep("d", "u1", 10)]
    txns.append(txns[0])
    plan = plan_batch(txns, stored={}, balances=house(), rounds={}, now=NOW)
    assert [type(o).__name__ for o in plan.outcomes] == ["InsufficientFunds", "TxnResult", "TxnResult"]
    last = plan.outcomes[2]
    assert isinstance(last, TxnResult) and not last.duplicate


def test_round_rules() -> None:
    """Open rounds of the same user may be rewritten; settled or foreign ones are conflicts."""
    rounds = {"open": RoundState("u1", RoundStatus.OPEN), "done": RoundState("u1", RoundStatus.SETTLED)}

    def t(key: str, rid: str, user: str = "u1") -> Txn:
        return Txn(
            key=key,
            entries=(),
            round=RoundRecord(round_id=rid, user_id=user, game_id="g", status=RoundStatus.SETTLED),
        )

    plan = plan_batch(
        [t("1", "open"), t("2", "done"), t("3", "open", "u2"), t("4", "new")],
        stored={},
        balances={},
        rounds=rounds,
        now=NOW,
    )
    assert [type(o).__name__ for o in plan.outcomes] == [
        "TxnResult",
        "RoundConflict",
        "RoundConflict",
        "TxnResult",
    ]
    assert set(plan.round_updates) == {"open"} and set(plan.round_inserts) == {"new"}
    assert plan.round_inserts["new"].settled_at == NOW
    conflict = plan.outcomes[1]
    assert isinstance(conflict, RoundConflict) and "settled" in str(conflict)


ops = st.lists(
    st.tuples(
        st.sampled_from(["dep", "bet", "win", "retry"]),
        st.integers(0, 3),  # user
        st.integers(1, 500),  # amount
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops, cuts=st.lists(st.integers(1, 15), min_size=1, max_size=20))
def test_batches_match_a_sequential_model(ops: list[tuple[str, int, int]], cuts: list[int]) -> None:
    """Any split into batches gives the same outcome as applying txns one by one: no negative
    balance, every batch sums to zero, a committed key never applies twice."""
    txns: list[Txn] = []
    for i, (op, u, amount) in enumerate(ops):
        user = f"u{u}"
        if op == "retry" and txns:
            txns.append(txns[amount % len(txns)])
        elif op == "bet":
            txns.append(spin_txn(f"k{i}", player=user, house="house", currency="EUR", bet=amount, win=0))
        elif op == "win":
            txns.append(
                spin_txn(f"k{i}", player=user, house="house", currency="EUR", bet=amount, win=amount * 2)
            )
        else:
            txns.append(dep(f"k{i}", user, amount))

    model: dict[str, int] = {}
    expected: list[bool | None] = []  # True committed, None duplicate, False rejected
    done: set[str] = set()
    for t in txns:
        if t.key in done:
            expected.append(None)
            continue
        bal = dict(model)
        ok = True
        for e in t.entries:
            if e.account == "house":
                continue
            bal[e.account] = bal.get(e.account, 0) + e.amount
            if bal[e.account] < 0:
                ok = False
                break
        expected.append(ok)
        if ok:
            model = bal
            done.add(t.key)

    balances = house()
    stored: dict[str, bytes] = {}
    got: list[bool | None] = []
    i = 0
    sizes = itertools.cycle(cuts)
    while i < len(txns):
        n = next(sizes)
        batch = txns[i : i + n]
        plan = plan_batch(batch, stored=stored, balances=balances, rounds={}, now=NOW)
        assert sum(plan.deltas.values()) == 0
        assert all(st_.allow_negative or st_.balance >= 0 for st_ in plan.balances.values())
        balances = {k: AccountState(v.balance, v.allow_negative) for k, v in plan.balances.items()}
        for t, r in plan.accepted:
            stored[t.key] = encode_result(r)
        for o in plan.outcomes:
            got.append(None if isinstance(o, TxnResult) and o.duplicate else isinstance(o, TxnResult))
            assert isinstance(o, TxnResult | InsufficientFunds)
        i += n
    assert got == expected
    assert {k[0]: v.balance for k, v in balances.items() if k[0] != "house"} == {
        u: b for u, b in model.items()
    }
