"""Session tokens and the login password hash (spec §6.1, §6.2).

The client never sends the plain password: ``pw`` is the lowercase hex MD5 of
``session token + plain password`` (or ``""`` for an empty password). MD5 is
what the clients compute; it is a challenge-response salt, not password storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["check_password", "new_session_token", "password_hash"]


def new_session_token() -> str:
    """Return a new random session token ``tk``: 32 lowercase hex chars, as SFS2X sends."""
    return secrets.token_hex(16)


def password_hash(token: str, password: str) -> str:
    """Return what the client sends as ``pw``: ``md5(token + password)`` in lowercase hex.

    An empty password is sent as ``""``, not hashed.
    """
    if not password:
        return ""
    return hashlib.md5((token + password).encode("utf-8"), usedforsecurity=False).hexdigest()


def check_password(token: str, password: str, received: str) -> bool:
    """Return whether ``received`` (the login ``pw``) matches the clear-text ``password``.

    The comparison takes constant time.
    """
    return hmac.compare_digest(
        password_hash(token, password).encode(), received.encode("utf-8", "surrogatepass")
    )
