"""The rank index against a brute-force sorted list, plus golden cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rooms.leaderboards.ranking import RankIndex, Record

OWNERS = st.sampled_from([f"u{i}" for i in range(40)])
SCORES = st.integers(-5, 20)
SUBS = st.integers(0, 5)


def brute(model: dict[str, tuple[int, int]]) -> list[Record]:
    ordered = sorted(model.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[0]))
    return [Record(o, s, sub, r) for r, (o, (s, sub)) in enumerate(ordered, 1)]


@pytest.mark.parametrize("order", [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [3, 1, 5, 2, 4]])
def test_insert_five_expect_ranks_one_to_five(order):
    index = RankIndex(load=4)
    for score in order:
        index.insert(f"p{score}", score * 10)
    assert [index.rank(f"p{s}") for s in (5, 4, 3, 2, 1)] == [1, 2, 3, 4, 5]
    assert [r.owner_id for r in index.top(5)] == ["p5", "p4", "p3", "p2", "p1"]


def test_ties_earlier_subscore_then_owner_id():
    index = RankIndex()
    index.insert("b", 100, 7)
    index.insert("a", 100, 7)
    index.insert("c", 100, 3)
    index.insert("d", 200, 9)
    assert [r.owner_id for r in index] == ["d", "c", "a", "b"]
    assert index.count_better(100) == 1  # shared rank 2 for the tie group (split mode)
    assert index.count_better(50) == 4


def test_remove_update_and_errors():
    index = RankIndex(load=4)
    index.fill([("a", 1, 0), ("b", 2, 0), ("a", 3, 0)])
    assert [r.owner_id for r in index] == ["a", "b"]
    index.insert("b", 5)
    assert index.rank("b") == 1
    assert index.remove("b") and not index.remove("b")
    assert index.rank("b") is None and index.get("a") == (3, 0)
    with pytest.raises(IndexError):
        index.kth(2)
    with pytest.raises(ValueError):
        RankIndex(load=1)


def test_around_gives_neighbours():
    index = RankIndex(load=4)
    for i in range(20):
        index.insert(f"u{i:02}", i)
    got = index.around("u10", 2, 2)
    assert [r.owner_id for r in got] == ["u12", "u11", "u10", "u09", "u08"]
    assert [r.rank for r in got] == [8, 9, 10, 11, 12]
    assert [r.owner_id for r in index.around("u19", 3, 1)] == ["u19", "u18"]


class RankMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.index = RankIndex(load=4)  # tiny blocks: splits and drops happen all the time
        self.model: dict[str, tuple[int, int]] = {}

    @rule(owner=OWNERS, score=SCORES, sub=SUBS)
    def insert(self, owner, score, sub):
        self.index.insert(owner, score, sub)
        self.model[owner] = (score, sub)

    @rule(owner=OWNERS)
    def remove(self, owner):
        assert self.index.remove(owner) == (self.model.pop(owner, None) is not None)

    @rule(records=st.lists(st.tuples(OWNERS, SCORES, SUBS), max_size=30))
    def fill(self, records):
        self.index.fill(records)
        self.model = {o: (s, sub) for o, s, sub in records}

    @rule(first=st.integers(-2, 45), count=st.integers(-1, 45))
    def range_query(self, first, count):
        expected = brute(self.model)[max(first, 1) - 1 :][: max(count, 0)]
        assert self.index.range(first, count) == expected

    @rule(score=SCORES)
    def count_better(self, score):
        assert self.index.count_better(score) == sum(1 for s, _ in self.model.values() if s > score)

    @invariant()
    def same_as_brute_force(self):
        expected = brute(self.model)
        assert len(self.index) == len(expected)
        assert list(self.index) == expected
        for rec in expected:
            assert self.index.rank(rec.owner_id) == rec.rank
            assert self.index.kth(rec.rank) == rec
        assert self.index.top(10) == expected[:10]


TestRankMachine = RankMachine.TestCase
TestRankMachine.settings = settings(max_examples=150, stateful_step_count=60)


@given(st.lists(st.tuples(OWNERS, SCORES), max_size=200))
def test_many_inserts_then_removes(ops):
    index, model = RankIndex(load=4), {}
    for owner, score in ops:
        index.insert(owner, score)
        model[owner] = (score, 0)
    for owner in list(model)[::2]:
        index.remove(owner)
        del model[owner]
    assert list(index) == brute(model)
