"""Sans-I/O SmartFoxServer 2X codec: typed values, packets, envelope, messages.

Layers, bottom up (spec sections in brackets):

- :mod:`.types`: :class:`SFSType`, :class:`SFSObject`, :class:`SFSArray` [§3]
- :mod:`.codec`: SFSObject/SFSArray <-> bytes [§3]
- :mod:`.packet`: framing, compression, :class:`PacketReader` for TCP [§2]
- :mod:`.envelope`: :class:`Message`, code tables, Room/User structures [§4-§6.0, §9]
- :mod:`.messages`: request parsers and response builders [§6.1-§6.11]
- :mod:`.auth`: session tokens and the login password hash [§6.2]
- :mod:`.errors`: :class:`SFSDecodeError` and friends

Nothing here does I/O: the transport feeds bytes in and sends bytes out.
"""

from __future__ import annotations

from .auth import check_password, new_session_token, password_hash
from .codec import decode_array, decode_object, decode_value, encode_array, encode_object, encode_value
from .envelope import (
    Action,
    Controller,
    DisconnectionReason,
    ErrorCode,
    Message,
    MessageType,
    Privilege,
    RoomInfo,
    RoomVariable,
    UserInfo,
    UserVariable,
    VariableType,
    decode_frame,
    decode_packet_message,
    decode_payload,
    encode_frame,
    encode_payload,
    error_response,
    room_array,
    room_list,
    user_array,
    user_list,
)
from .errors import PacketTooBig, SFSDecodeError, SFSEncodeError, SFSError, SFSFieldError
from .packet import Packet, PacketFlags, PacketReader, decode_packet, encode_packet
from .types import SFSArray, SFSObject, SFSType

__all__ = [
    "Action",
    "Controller",
    "DisconnectionReason",
    "ErrorCode",
    "Message",
    "MessageType",
    "Packet",
    "PacketFlags",
    "PacketReader",
    "PacketTooBig",
    "Privilege",
    "RoomInfo",
    "RoomVariable",
    "SFSArray",
    "SFSDecodeError",
    "SFSEncodeError",
    "SFSError",
    "SFSFieldError",
    "SFSObject",
    "SFSType",
    "UserInfo",
    "UserVariable",
    "VariableType",
    "check_password",
    "decode_array",
    "decode_frame",
    "decode_object",
    "decode_packet",
    "decode_packet_message",
    "decode_payload",
    "decode_value",
    "encode_array",
    "encode_frame",
    "encode_object",
    "encode_packet",
    "encode_payload",
    "encode_value",
    "error_response",
    "new_session_token",
    "password_hash",
    "room_array",
    "room_list",
    "user_array",
    "user_list",
]
