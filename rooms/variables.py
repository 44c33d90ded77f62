"""Validation and merging of room and user variables."""

from __future__ import annotations

import math

import msgspec

from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.messages import Variable

_encode = msgspec.msgpack.Encoder().encode


def _finite(value: object, depth: int = 0) -> bool:
    """False if the value holds NaN or an infinity (JSON clients would see null)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 32:
        return False
    if isinstance(value, list):
        return all(_finite(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_finite(v, depth + 1) for v in value.values())
    return True


def check_size(var: Variable, max_bytes: int) -> None:
    """Raise VARIABLE_INVALID if the value is too big or not representable in JSON."""
    if not _finite(var.value):
        raise RequestError(
            ErrorCode.VARIABLE_INVALID, f"variable {var.name!r}: NaN and infinity are not allowed"
        )
    size = len(_encode(var.value))
    if size > max_bytes:
        raise RequestError(
            ErrorCode.VARIABLE_INVALID, f"variable {var.name!r} is {size} bytes, above {max_bytes}"
        )


def apply(
    store: dict[str, Variable],
    changes: list[Variable],
    max_count: int,
    max_bytes: int,
) -> list[Variable]:
    """Apply `changes` to `store` (a null value deletes); return the ones that changed.

    All-or-nothing: every change is validated before any is applied.
    """
    names = set(store)
    for var in changes:
        check_size(var, max_bytes)
        if var.value is None:
            names.discard(var.name)
        else:
            names.add(var.name)
    if len(names) > max_count:
        raise RequestError(ErrorCode.VARIABLE_INVALID, f"at most {max_count} variables")
    changed: list[Variable] = []
    for var in changes:
        old = store.get(var.name)
        if var.value is None:
            if old is not None:
                del store[var.name]
                changed.append(var)
        elif old != var:
            store[var.name] = var
            changed.append(var)
    return changed
