"""Invitations: a user invites others (to its table, a game...); each accepts or refuses in time.

`invite` sends every invitee an `invitation` event on its home worker (a cast there in a
cluster) and answers with the invitation id; `invitation_reply` goes from the invitee's
home to the inviter's, which tells the inviter (`invitation_reply` event). An invitee that
does not answer in time is reported to the inviter as expired, once. An invitee who is not
online gets nothing and is reported expired. The bookkeeping is rooms/invitations.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from protocol import messages as m
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from rooms.invitations import Invitations

from .services import stop_task

if TYPE_CHECKING:
    from .hub import Hub
    from .player import Player
    from .sharding import ShardedRouter

#: bus casts between homes: an invitation for an invitee, an answer for an inviter
SEND, ANSWER = "inv.send", "inv.answer"
#: how often invitations past their time are looked for (seconds)
EXPIRY_INTERVAL = 1.0


class InvitationService:
    request_types: frozenset[type] = frozenset({m.Invite, m.InvitationReply})

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.zones: dict[str, Invitations] = {name: Invitations() for name in hub.zones}
        #: invitations sent here; invitees' answers by outcome (on the inviter's home)
        self.counts = {"sent": 0, "accepted": 0, "refused": 0, "expired": 0, "too_late": 0}
        self.router: ShardedRouter | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the expiry ticker (and join the hub's ring, if it has one already)."""
        self._ticker = asyncio.get_running_loop().create_task(self._drive(), name="invitations")
        from .sharding import ShardedRouter

        if isinstance(self.hub.router, ShardedRouter):
            self.join_cluster(self.hub.router)

    def join_cluster(self, router: ShardedRouter) -> None:
        """Reach invitees and inviters whose home is another worker."""
        if self.router is router:
            return
        self.router = router
        router.bus.on(SEND, self._on_send)
        router.bus.on(ANSWER, self._on_answer)

    # -- requests --------------------------------------------------------------------------

    def handle(self, player: Player, req: Any) -> None:
        zone, uid, now = player.zone, player.user_id, self.hub.clock.wall()
        inv = self.zones[zone]
        me = msgspec.to_builtins(self.hub.zones[zone].user(uid).view())
        if isinstance(req, m.Invite):
            invitees = [u for u in dict.fromkeys(req.users) if u != uid]
            if not invitees:
                raise RequestError(ErrorCode.BAD_REQUEST, "invite someone other than yourself")
            invitation = secrets.randbelow(2**31 - 2) + 1
            while invitation in inv.sent:
                invitation = secrets.randbelow(2**31 - 2) + 1
            deadline = now + req.seconds
            inv.send(invitation, uid, set(invitees), deadline)
            self.counts["sent"] += 1
            note = {"id": invitation, "from": me, "seconds": req.seconds, "data": req.data}
            for invitee in invitees:
                self._to_invitee(zone, invitee, invitation, uid, deadline, note)
            self.hub.reply_to(player, req.id, {"invitation": invitation, "invited": invitees})
        else:
            inviter = inv.answer(uid, req.invitation, now)
            if inviter is None:
                self.counts["too_late"] += 1
                raise RequestError(
                    ErrorCode.INVITATION_NOT_FOUND, f"no invitation {req.invitation} to answer (expired?)"
                )
            answer = {"invitation": req.invitation, "from": me, "accept": req.accept, "data": req.data}
            self._to_inviter(zone, inviter, req.invitation, uid, answer)
            self.hub.reply_to(player, req.id, {"invitation": req.invitation})

    def _home(self, zone: str, user: int) -> str | None:
        """The user's home worker if it is another one, else None."""
        router = self.router
        if router is None or router.owns_user(zone, user):
            return None
        return router.shards.home(zone, user)

    def _to_invitee(
        self, zone: str, invitee: int, invitation: int, inviter: int, deadline: float, note: Any
    ) -> None:
        home = self._home(zone, invitee)
        if home is not None:
            assert self.router is not None
            self.router.bus.cast(home, SEND, [zone, invitee, invitation, inviter, deadline, note])
        else:
            self._on_send("", [zone, invitee, invitation, inviter, deadline, note])

    def _to_inviter(self, zone: str, inviter: int, invitation: int, invitee: int, answer: Any) -> None:
        home = self._home(zone, inviter)
        if home is not None:
            assert self.router is not None
            self.router.bus.cast(home, ANSWER, [zone, inviter, invitation, invitee, answer])
        else:
            self._on_answer("", [zone, inviter, invitation, invitee, answer])

    # -- on the homes ----------------------------------------------------------------------

    def _on_send(self, src: str, body: list[Any]) -> None:
        zone, invitee, invitation, inviter, deadline, note = body
        player = self.hub.players.get((zone, invitee))
        inv = self.zones.get(zone)
        if player is None or inv is None:
            return  # not online: the inviter hears it expired
        inv.receive(invitee, invitation, inviter, deadline)
        player.push(OutEvent("invitation", note))
        self.hub.counters.events += 1

    def _on_answer(self, src: str, body: list[Any]) -> None:
        zone, inviter, invitation, invitee, answer = body
        inv = self.zones.get(zone)
        if inv is None or inv.answered(invitation, invitee) != inviter:
            return  # too late: it expired here
        self.counts["accepted" if answer.get("accept") else "refused"] += 1
        player = self.hub.players.get((zone, inviter))
        if player is not None:
            player.push(OutEvent("invitation_reply", answer))

    # -- handover (rolling restart) and checkpoints ------------------------------------------

    def handover_state(self) -> Any:
        """What was sent and received here, for this worker's successor (or its checkpoint)."""
        return {
            zone: {
                "sent": [[i, x.inviter, x.deadline, sorted(x.waiting)] for i, x in inv.sent.items()],
                "received": [[u, i, inviter, d] for (u, i), (inviter, d) in inv.received.items()],
            }
            for zone, inv in self.zones.items()
            if inv.sent or inv.received
        }

    def adopt_handover(self, state: Any) -> None:
        """The predecessor's invitations: answers and expiries go on here."""
        for zone, part in (state or {}).items():
            inv = self.zones.get(zone)
            if inv is None:
                continue
            for invitation, inviter, deadline, waiting in part.get("sent", ()):
                inv.send(int(invitation), int(inviter), {int(u) for u in waiting}, float(deadline))
            for invitee, invitation, inviter, deadline in part.get("received", ()):
                inv.receive(int(invitee), int(invitation), int(inviter), float(deadline))

    # -- expiry ----------------------------------------------------------------------------

    def expire(self) -> None:
        """Tell inviters of the invitees that did not answer in time."""
        now = self.hub.clock.wall()
        for zone, inv in self.zones.items():
            for invitation, inviter, invitee in inv.expire(now):
                self.counts["expired"] += 1
                player = self.hub.players.get((zone, inviter))
                if player is not None:
                    data = {
                        "invitation": invitation,
                        "from": {"id": invitee},
                        "accept": False,
                        "expired": True,
                    }
                    player.push(OutEvent("invitation_reply", data))

    async def _drive(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL)
            self.expire()

    # -- the service protocol --------------------------------------------------------------

    def metric_families(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Prometheus families, read at scrape time (gameserver/metrics.py)."""
        sent = CounterMetricFamily("croupier_invitations", "Invitations sent by this worker's users")
        sent.add_metric([], self.counts["sent"])
        yield sent
        answers = CounterMetricFamily(
            "croupier_invitation_answers",
            "Invitees' answers, by outcome (too_late: refused)",
            labels=["outcome"],
        )
        for outcome in ("accepted", "refused", "expired", "too_late"):
            answers.add_metric([outcome], self.counts[outcome])
        yield answers
        yield GaugeMetricFamily(
            "croupier_invitations_open",
            "Invitations still waiting for an answer",
            value=sum(len(inv.sent) for inv in self.zones.values()),
        )

    def player_joined(self, player: Player) -> None:
        pass

    def player_left(self, player: Player) -> None:
        pass

    async def drain(self) -> None:
        await stop_task(self._ticker)
        self._ticker = None
