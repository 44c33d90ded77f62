"""Shared pieces of the wire messages: field types and the request base class.

Feature message modules (protocol/messages.py and its siblings) build on these; the
client-message union in protocol/messages.py lists every request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

# -- shared pieces -------------------------------------------------------------------------

RequestId = Annotated[int, Meta(ge=0, le=2**53)]
RoomId = Annotated[int, Meta(ge=0, le=2**31 - 1)]
UserId = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Name = Annotated[str, Meta(min_length=1, max_length=64)]
GroupName = Annotated[str, Meta(min_length=1, max_length=64)]
Text = Annotated[str, Meta(max_length=8192)]
Password = Annotated[str, Meta(max_length=128)]
Scope = Literal["user", "room", "group", "zone"]

#: A variable's value: the SmartFox variable types (null, bool, int, double, string,
#: object, array). `null` deletes the variable.
VarValue = None | bool | int | float | str | list[Any] | dict[str, Any]


class Variable(Struct, frozen=True, omit_defaults=True):
    """A room or user variable.

    `private`: for a room variable, only the user who set it (or a moderator) may change
    it; for a user variable, only its owner sees it. `persistent`: a room variable that
    survives its setter leaving the room (and, with a store, restarts).
    """

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    value: VarValue = None
    private: bool = False
    persistent: bool = False


class Request(Struct, tag_field="type", frozen=True):
    """Base of client requests."""

    id: RequestId
