"""Small pure rules shared by every backend (leaderboard operators, audit hash chain)."""

from __future__ import annotations

import hashlib

import msgspec

from persistence.records import AuditEntry, LeaderboardOp, LeaderboardRecord

__all__ = ["GENESIS_HASH", "audit_hash", "combine_score", "rank_key"]

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first audit entry."""

_encoder = msgspec.msgpack.Encoder()


def combine_score(
    old: LeaderboardRecord | None, new: LeaderboardRecord, op: LeaderboardOp
) -> LeaderboardRecord:
    """The record to store when ``new`` is submitted with ``op`` over ``old``.

    ``BEST`` keeps the better of (score, subscore); ``SET`` replaces; ``INCR`` and
    ``DECR`` add or subtract both score and subscore.
    """
    if old is None:
        if op is LeaderboardOp.DECR:
            return msgspec.structs.replace(new, score=-new.score, subscore=-new.subscore)
        return new
    if op is LeaderboardOp.SET:
        return new
    if op is LeaderboardOp.BEST:
        return new if (new.score, new.subscore) > (old.score, old.subscore) else old
    sign = 1 if op is LeaderboardOp.INCR else -1
    return msgspec.structs.replace(
        new, score=old.score + sign * new.score, subscore=old.subscore + sign * new.subscore
    )


def rank_key(rec: LeaderboardRecord) -> tuple[int, int, str]:
    """Sort key for ranking: best first, ties broken by owner id."""
    return (-rec.score, -rec.subscore, rec.owner_id)


def audit_hash(entry: AuditEntry) -> str:
    """SHA-256 over the previous hash and every field of the entry except ``hash``."""
    payload = _encoder.encode(
        (
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.before,
            entry.after,
            entry.reason,
            entry.request_id,
        )
    )
    return hashlib.sha256(entry.prev_hash.encode() + payload).hexdigest()
