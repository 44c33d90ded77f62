"""Room and user requests mapped onto zone operations: one small function per message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol import messages as m
from rooms.zone import Result, Zone

Handler = Callable[[Zone, int, Any, float], Result]


def _list_rooms(z: Zone, uid: int, r: m.ListRooms, now: float) -> Result:
    return z.list_rooms(uid, r.group)


def _find_rooms(z: Zone, uid: int, r: m.FindRooms, now: float) -> Result:
    return z.find_rooms(uid, r.group, r.where, r.limit)


def _find_users(z: Zone, uid: int, r: m.FindUsers, now: float) -> Result:
    return z.find_users(uid, r.room, r.group, r.where, r.limit)


def _subscribe(z: Zone, uid: int, r: m.SubscribeGroup, now: float) -> Result:
    return z.subscribe_group(uid, r.group)


def _unsubscribe(z: Zone, uid: int, r: m.UnsubscribeGroup, now: float) -> Result:
    return z.unsubscribe_group(uid, r.group)


def _create(z: Zone, uid: int, r: m.CreateRoom, now: float) -> Result:
    return z.create_room(
        uid,
        name=r.name,
        group=r.group,
        game=r.game,
        max_users=r.max_users,
        max_spectators=r.max_spectators,
        password=r.password,
        hidden=r.hidden,
        variables=r.variables,
        join=r.join,
        spectator=r.spectator,
    )


def _join(z: Zone, uid: int, r: m.JoinRoom, now: float) -> Result:
    return z.join_room(uid, r.room, password=r.password, spectator=r.spectator, leave=r.leave)


def _leave(z: Zone, uid: int, r: m.LeaveRoom, now: float) -> Result:
    return z.leave_room(uid, r.room)


def _switch(z: Zone, uid: int, r: m.SwitchRole, now: float) -> Result:
    return z.switch_role(uid, r.room, r.spectator)


def _change(z: Zone, uid: int, r: m.ChangeRoom, now: float) -> Result:
    return z.change_room(
        uid, r.room, name=r.name, password=r.password, max_users=r.max_users, max_spectators=r.max_spectators
    )


def _public(z: Zone, uid: int, r: m.PublicMessage, now: float) -> Result:
    return z.public_message(uid, r.room, r.text, r.data)


def _private(z: Zone, uid: int, r: m.PrivateMessage, now: float) -> Result:
    return z.private_message(uid, r.to, r.text, r.data)


def _object(z: Zone, uid: int, r: m.ObjectMessage, now: float) -> Result:
    return z.object_message(uid, r.room, r.data, r.to)


def _moderator(z: Zone, uid: int, r: m.ModeratorMessage, now: float) -> Result:
    return z.staff_message(uid, "moderator", r.text, r.scope, r.target, r.data)


def _admin(z: Zone, uid: int, r: m.AdminMessage, now: float) -> Result:
    return z.staff_message(uid, "admin", r.text, r.scope, r.target, r.data)


def _room_vars(z: Zone, uid: int, r: m.SetRoomVariables, now: float) -> Result:
    return z.set_room_variables(uid, r.room, r.variables)


def _user_vars(z: Zone, uid: int, r: m.SetUserVariables, now: float) -> Result:
    return z.set_user_variables(uid, r.variables)


def _kick(z: Zone, uid: int, r: m.Kick, now: float) -> Result:
    return z.kick(uid, r.user, r.reason)


def _ban(z: Zone, uid: int, r: m.Ban, now: float) -> Result:
    return z.ban(uid, r.user, r.hours, r.reason, now)


ZONE_HANDLERS: dict[type, Handler] = {
    m.ListRooms: _list_rooms,
    m.FindRooms: _find_rooms,
    m.FindUsers: _find_users,
    m.SubscribeGroup: _subscribe,
    m.UnsubscribeGroup: _unsubscribe,
    m.CreateRoom: _create,
    m.JoinRoom: _join,
    m.LeaveRoom: _leave,
    m.SwitchRole: _switch,
    m.ChangeRoom: _change,
    m.PublicMessage: _public,
    m.PrivateMessage: _private,
    m.ObjectMessage: _object,
    m.ModeratorMessage: _moderator,
    m.AdminMessage: _admin,
    m.SetRoomVariables: _room_vars,
    m.SetUserVariables: _user_vars,
    m.Kick: _kick,
    m.Ban: _ban,
}
