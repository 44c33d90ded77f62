"""The worked hex test vectors of the SFS2X spec (§12), byte-exact in both directions."""

from __future__ import annotations

import zlib

import pytest

from protocol.sfs2x import (
    Action,
    DisconnectionReason,
    ErrorCode,
    Message,
    PacketFlags,
    SFSObject,
    SFSType,
    decode_frame,
    decode_object,
    decode_packet,
    encode_frame,
    encode_object,
    error_response,
    password_hash,
)
from protocol.sfs2x.messages import (
    client_disconnection,
    extension_request,
    extension_response,
    handshake_request,
    handshake_response,
    login_request,
    parse_extension_request,
    parse_handshake,
    parse_login,
    pong,
)

TOKEN = "0123456789abcdef0123456789abcdef"

VECTORS: dict[str, tuple[str, Message]] = {
    "a-handshake-request": (
        "80003212000300016302000001610300000001701200020003617069080005312e382e36"
        "0002636c08000a4a617661536372697074",
        handshake_request("1.8.6", "JavaScript"),
    ),
    "b-handshake-response": (
        "80004d12000300016302000001610300000001701200030002746b08002030313233343536"
        "3738396162636465663031323334353637383961626364656600026374040000040000026d"
        "7304000f4240",
        handshake_response(TOKEN, compression_threshold=1024, max_message_size=1_000_000),
    ),
    "c-login-request": (
        "80003c120003000163020000016103000100017012000300027a6e08000d42617369634578"
        "616d706c65730002756e08000674657374657200027077080000",
        login_request("BasicExamples", "tester", ""),
    ),
    "d-login-error": (
        "80002a1200030001630200000161030001000170120002000265630300010002657010000100064e6f5a6f6e65",
        error_response(Action.LOGIN, ErrorCode.LOGIN_BAD_ZONE_NAME, "NoZone"),
    ),
    "e-kick-disconnection": (
        "80001a12000300016302000001610303ed000170120001000264720201",
        client_disconnection(DisconnectionReason.KICK),
    ),
    "f-extension-response": (
        "800035120003000163020100016103000d00017012000200016308000b636173696e6f2e7370"
        "696e000170120001000377696e040000002a",
        extension_response("casino.spin", SFSObject().put_int("win", 42)),
    ),
    "g-pong": ("800014120003000163020000016103001d000170120000", pong()),
}

LENGTHS = {"a": 53, "b": 80, "c": 63, "d": 45, "e": 29, "f": 56, "g": 23}


@pytest.mark.parametrize("name", VECTORS)
def test_encode_vector(name: str) -> None:
    """Our builders produce the vector's exact bytes."""
    hex_, message = VECTORS[name]
    expected = bytes.fromhex(hex_)
    assert len(expected) == LENGTHS[name[0]]
    assert encode_frame(message) == expected


@pytest.mark.parametrize("name", VECTORS)
def test_decode_vector(name: str) -> None:
    """The vector's bytes decode to the message, with every type preserved."""
    hex_, message = VECTORS[name]
    assert decode_frame(bytes.fromhex(hex_)) == message


def test_vector_a_fields() -> None:
    """The captured handshake parses to api 1.8.6 from a JavaScript client."""
    message = decode_frame(bytes.fromhex(VECTORS["a-handshake-request"][0]))
    assert (message.controller, message.action) == (0, Action.HANDSHAKE)
    request = parse_handshake(message.params)
    assert (request.api, request.client_type, request.reconnection_token) == ("1.8.6", "JavaScript", None)


def test_vector_b_types() -> None:
    """Handshake response: tk UTF_STRING, ct and ms INT."""
    params = decode_frame(bytes.fromhex(VECTORS["b-handshake-response"][0])).params
    assert params.get_utf_string("tk") == TOKEN
    assert params.get_int("ct") == 1024
    assert params.get_int("ms") == 1_000_000


def test_vector_c_fields() -> None:
    """The captured login request parses with an empty password."""
    login = parse_login(decode_frame(bytes.fromhex(VECTORS["c-login-request"][0])).params)
    assert (login.zone, login.user_name, login.password, login.params) == (
        "BasicExamples",
        "tester",
        "",
        None,
    )


def test_vector_d_types() -> None:
    """Error response: ec SHORT, ep UTF_STRING_ARRAY."""
    params = decode_frame(bytes.fromhex(VECTORS["d-login-error"][0])).params
    assert params.type_of("ec") is SFSType.SHORT
    assert params.get_utf_string_array("ep") == ("NoZone",)


def test_vector_e_types() -> None:
    """1005 carries dr as a BYTE."""
    message = decode_frame(bytes.fromhex(VECTORS["e-kick-disconnection"][0]))
    assert message.action == Action.CLIENT_DISCONNECTION
    assert message.params.get_byte("dr") == DisconnectionReason.KICK


def test_vector_f_controller() -> None:
    """Extension response: c=1, a=13, cmd and params."""
    message = decode_frame(bytes.fromhex(VECTORS["f-extension-response"][0]))
    assert (message.controller, message.action) == (1, 13)
    assert message.params.get_utf_string("c") == "casino.spin"
    assert message.params.get_sfs_object("p").get_int("win") == 42


def test_vector_h_scalars() -> None:
    """LONG, FLOAT, SHORT, BYTE and TEXT scalars encode exactly as the library does."""
    expected = bytes.fromhex(
        "120006"
        "00016c05fffffffffffffffb"
        "00016d050000010000000003"
        "000166063fc00000"
        "00017303fffe"
        "00016202ff"
        "0001741400000002c3a9"
    )
    obj = (
        SFSObject()
        .put_long("l", -5)
        .put_long("m", 2**40 + 3)
        .put_float("f", 1.5)
        .put_short("s", -2)
        .put_byte("b", 255)
        .put_text("t", "é")
    )
    assert encode_object(obj) == expected
    decoded = decode_object(expected)
    assert decoded == obj
    assert [decoded.type_of(k) for k in decoded] == [
        SFSType.LONG,
        SFSType.LONG,
        SFSType.FLOAT,
        SFSType.SHORT,
        SFSType.BYTE,
        SFSType.TEXT,
    ]


def test_vector_i_compressed_request() -> None:
    """A 3 KB extension request is sent with header a0 and a zlib payload (78 9c), compared after inflating."""
    params = SFSObject().put_utf_string("blob", "spin " * 600)
    message = extension_request("casino.bulk", params)
    frame = encode_frame(message)
    assert frame[0] == 0xA0
    assert frame[3:5] == b"\x78\x9c"
    packet = decode_packet(frame)
    assert packet.flags == PacketFlags.BINARY | PacketFlags.COMPRESSED
    assert packet.payload == zlib.decompress(frame[3:])
    decoded = decode_frame(frame)
    assert decoded == message
    assert parse_extension_request(decoded.params).params.get_utf_string("blob") == "spin " * 600


def test_vector_i_big_size() -> None:
    """A 70 000-byte BYTE_ARRAY packet, uncompressed, has the header 88 00 01 11 8c (length 70 028)."""
    message = Message.system(Action.CALL_EXTENSION, SFSObject().put_byte_array("d", bytes(70_000)))
    frame = encode_frame(message, compression_threshold=None)
    assert frame[:5] == bytes.fromhex("880001118c")
    assert len(frame) == 5 + 70_028
    assert decode_frame(frame) == message


def test_password_hash_example() -> None:
    """Token 0123...cdef with password "secret" gives 5211df07cd46b5585096e3714f622238 (spec §6.2)."""
    assert password_hash(TOKEN, "secret") == "5211df07cd46b5585096e3714f622238"
    assert password_hash(TOKEN, "") == ""
