"""Hypothesis strategies for typed SFS values."""

from __future__ import annotations

from hypothesis import strategies as st

from protocol.sfs2x import SFSArray, SFSObject, SFSType
from protocol.sfs2x.types import Entry

T = SFSType


def _ints(bits: int) -> st.SearchStrategy[int]:
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


_strings = st.text(max_size=12)

scalar_entries: st.SearchStrategy[Entry] = st.one_of(
    st.just((T.NULL, None)),
    st.tuples(st.just(T.BOOL), st.booleans()),
    st.tuples(st.just(T.BYTE), st.integers(0, 255)),
    st.tuples(st.just(T.SHORT), _ints(16)),
    st.tuples(st.just(T.INT), _ints(32)),
    st.tuples(st.just(T.LONG), _ints(64)),
    st.tuples(st.just(T.FLOAT), st.floats(width=32, allow_nan=False)),
    st.tuples(st.just(T.DOUBLE), st.floats(allow_nan=False)),
    st.tuples(st.just(T.UTF_STRING), _strings),
    st.tuples(st.just(T.TEXT), _strings),
    st.tuples(st.just(T.BOOL_ARRAY), st.lists(st.booleans(), max_size=6).map(tuple)),
    st.tuples(st.just(T.BYTE_ARRAY), st.binary(max_size=8)),
    st.tuples(st.just(T.SHORT_ARRAY), st.lists(_ints(16), max_size=6).map(tuple)),
    st.tuples(st.just(T.INT_ARRAY), st.lists(_ints(32), max_size=6).map(tuple)),
    st.tuples(st.just(T.LONG_ARRAY), st.lists(_ints(64), max_size=6).map(tuple)),
    st.tuples(st.just(T.FLOAT_ARRAY), st.lists(st.floats(width=32, allow_nan=False), max_size=6).map(tuple)),
    st.tuples(st.just(T.DOUBLE_ARRAY), st.lists(st.floats(allow_nan=False), max_size=6).map(tuple)),
    st.tuples(st.just(T.UTF_STRING_ARRAY), st.lists(_strings, max_size=6).map(tuple)),
)

keys = st.text(min_size=1, max_size=8)


def _containers(children: st.SearchStrategy[Entry]) -> st.SearchStrategy[Entry]:
    arrays = st.lists(children, max_size=5).map(lambda es: (T.SFS_ARRAY, SFSArray(es)))
    objects = st.dictionaries(keys, children, max_size=5).map(lambda d: (T.SFS_OBJECT, SFSObject(d)))
    return st.one_of(arrays, objects)


entries: st.SearchStrategy[Entry] = st.recursive(scalar_entries, _containers, max_leaves=25)

objects: st.SearchStrategy[SFSObject] = st.dictionaries(keys, entries, max_size=6).map(SFSObject)
arrays: st.SearchStrategy[SFSArray] = st.lists(entries, max_size=6).map(SFSArray)
