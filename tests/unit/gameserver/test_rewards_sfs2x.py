"""SmartFox extension requests `casino.<tag>` for the rewards requests map to native requests."""

from __future__ import annotations

from typing import Any

from gameserver.casino import CASINO_TYPES
from gameserver.rewards import REWARDS_TYPES
from protocol import messages as m, rewards_messages as rm
from protocol.limits import FloodLimits, SessionLimits
from protocol.sfs2x import Message, SFSArray, SFSObject, decode_frame, encode_frame
from protocol.sfs2x.messages import extension_request, handshake_request, login_request
from protocol.sfs2x.session import SfsSession

#: the table a server builds from its services' request types
EXTENSIONS = {
    f"casino.{tag}": cls for tag, cls in m.CLIENT_TYPES.items() if cls in CASINO_TYPES | REWARDS_TYPES
}


def feed(s: SfsSession, msg: Message) -> list[Any]:
    s.receive_message(encode_frame(msg), True, 0.0)
    return s.requests_received()


def logged_in() -> SfsSession:
    s = SfsSession(SessionLimits(), FloodLimits(), 0.0, extensions=EXTENSIONS)
    feed(s, handshake_request())
    [login] = feed(s, login_request("demo", "alice"))
    s.authenticate()
    s.reply(
        login.id, {"zone": "demo", "user": {"id": 7, "name": "alice", "role": 0}, "groups": [], "rooms": []}
    )
    s.data_to_send()
    return s


def test_every_rewards_request_has_a_casino_command():
    assert {f"casino.{cls.__struct_config__.tag}" for cls in rm.REWARDS_MESSAGES} <= set(EXTENSIONS)
    assert all(m.CLIENT_TYPES[cls.__struct_config__.tag] is cls for cls in rm.REWARDS_MESSAGES)


def test_lottery_buy_and_rg_limit_from_sfs_params():
    s = logged_in()
    tickets = SFSArray().add_int_array([1, 2, 3]).add_int_array([4, 5, 6])
    params = SFSObject().put_utf_string("lottery", "quick_3of10").put_sfs_array("tickets", tickets)
    [req] = feed(s, extension_request("casino.lottery_buy", params))
    assert isinstance(req, rm.LotteryBuy) and req.tickets == [[1, 2, 3], [4, 5, 6]]
    s.reply(req.id, {"draw": "demo:quick_3of10:1", "cost": 200, "balance": 9800})
    [resp] = [decode_frame(p) for p in s.data_to_send()]
    assert resp.params.get_utf_string("c") == "casino.lottery_buy"
    assert resp.params.get_sfs_object("p").get_int("cost") == 200
    limit = SFSObject().put_utf_string("kind", "loss").put_utf_string("period", "day").put_int("amount", 500)
    [req] = feed(s, extension_request("casino.rg_limit", limit))
    assert isinstance(req, rm.RgLimit) and (req.kind, req.period, req.amount) == ("loss", "day", 500)
    [req] = feed(s, extension_request("casino.mission_list", SFSObject()))
    assert isinstance(req, rm.MissionList)


def test_the_default_session_table_has_the_rewards_commands():
    s = SfsSession(SessionLimits(), FloodLimits(), 0.0)
    feed(s, handshake_request())
    [login] = feed(s, login_request("demo", "alice"))
    s.authenticate()
    s.reply(
        login.id, {"zone": "demo", "user": {"id": 7, "name": "alice", "role": 0}, "groups": [], "rooms": []}
    )
    s.data_to_send()
    [req] = feed(
        s, extension_request("casino.pick_open", SFSObject().put_utf_string("round", "r1").put_int("box", 2))
    )
    assert isinstance(req, rm.PickOpen) and (req.round, req.box) == ("r1", 2)
