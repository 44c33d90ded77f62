"""Signed login tokens: HMAC-SHA256 over a compact JSON claim set.

Format: `<base64url(claims)>.<base64url(hmac_sha256(secret, base64url(claims)))>`, with
claims `{"u": user id, "z": zone, "n": display name, "r": role, "exp": unix seconds}`.
The operator's auth service mints them with the shared secret (README, "Login tokens");
`croupier token` mints them for development. There is no algorithm field to tamper with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import msgspec

from protocol.codes import ErrorCode
from protocol.errors import RequestError
from rooms.roles import Role


class Claims(msgspec.Struct, frozen=True):
    u: int  # user id (0 .. 2**31-1)
    z: str  # zone
    exp: int  # expiry, unix seconds
    n: str = ""  # display name
    r: str = "user"  # role: guest, user, moderator, admin


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Claims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest())


def mint(secret: str, user_id: int, zone: str, *, name: str = "", role: str = "user", expires: int) -> str:
    """A token for `user_id` in `zone`, valid until the unix time `expires`."""
    Role.parse(role)
    if not 0 < user_id < 2**31:
        raise ValueError("user id must be in 1 .. 2**31-1")
    body = _b64(_encode(Claims(u=user_id, z=zone, exp=expires, n=name, r=role)))
    return f"{body}.{_sign(secret, body)}"


def verify(secret: str, token: str, now: float) -> Claims:
    """Check a token's signature and expiry and return its claims.

    Raises:
        RequestError: BAD_TOKEN (format, signature, claims) or TOKEN_EXPIRED.
    """
    body, dot, sig = token.partition(".")
    if not dot or len(token) > 2048:
        raise RequestError(ErrorCode.BAD_TOKEN, "malformed token")
    if not hmac.compare_digest(sig, _sign(secret, body)):
        raise RequestError(ErrorCode.BAD_TOKEN, "bad token signature")
    try:
        claims = _decode(_unb64(body))
        Role.parse(claims.r)
    except (ValueError, msgspec.MsgspecError):
        raise RequestError(ErrorCode.BAD_TOKEN, "bad token claims") from None
    if not 0 < claims.u < 2**31:
        raise RequestError(ErrorCode.BAD_TOKEN, "bad user id in token")
    if claims.exp <= now:
        raise RequestError(ErrorCode.TOKEN_EXPIRED, "token expired")
    return claims


#: The worker that issues resume tokens in this process ("" = a single-process server).
_issuer = ""


def set_issuer(member: str) -> None:
    """Name the worker (ring member, e.g. "0.3") that this process's resume tokens point to."""
    global _issuer
    if member and not all(c.isdigit() or c == "." for c in member):
        raise ValueError(f"bad ring member id {member!r}")
    _issuer = member


def issuer() -> str:
    """The ring member this process's tokens point to ("" outside a cluster)."""
    return _issuer


def resume_token() -> str:
    """A fresh, unguessable session resume token: `<worker>.<secret>` in a cluster.

    The worker prefix is a routing hint for the acceptor (the session lives in that
    worker's memory); it is not trusted: a forged prefix only routes the client to a
    worker that does not know the secret, where `resume` fails.
    """
    secret = secrets.token_urlsafe(24)  # URL-safe alphabet: no "."
    return f"{_issuer}.{secret}" if _issuer else secret


def resume_owner(token: str) -> str | None:
    """The worker a resume token names, or None (a single-process token, or garbage)."""
    owner, dot, secret = token.rpartition(".")
    if not dot or not owner or not secret or len(owner) > 16:
        return None
    if not all(c.isdigit() or c == "." for c in owner):
        return None
    return owner
