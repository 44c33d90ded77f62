"""Invitations between users: sent by an inviter, answered by each invitee in time, or expired.

Pure bookkeeping, time passed in. In a cluster the inviter's home worker keeps what it sent
(`sent`) and each invitee's home what the invitee received (`received`): an answer goes from
the invitee's home to the inviter's, and the inviter's home tells its user of the invitees
who did not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Sent:
    inviter: int
    deadline: float
    waiting: set[int] = field(default_factory=set)  # invitees who have not answered yet


class Invitations:
    """One zone's invitations on one worker."""

    def __init__(self) -> None:
        self.sent: dict[int, Sent] = {}
        #: (invitee, invitation id) -> (inviter, deadline)
        self.received: dict[tuple[int, int], tuple[int, float]] = {}

    def send(self, invitation: int, inviter: int, invitees: set[int], deadline: float) -> None:
        self.sent[invitation] = Sent(inviter, deadline, set(invitees))

    def receive(self, invitee: int, invitation: int, inviter: int, deadline: float) -> None:
        self.received[(invitee, invitation)] = (inviter, deadline)

    def answer(self, invitee: int, invitation: int, now: float) -> int | None:
        """The invitee answers: the inviter to tell, or None (not received, or too late)."""
        got = self.received.pop((invitee, invitation), None)
        if got is None or got[1] <= now:
            return None
        return got[0]

    def answered(self, invitation: int, invitee: int) -> int | None:
        """On the inviter's side: the answer arrived; the inviter if it was still awaited."""
        sent = self.sent.get(invitation)
        if sent is None or invitee not in sent.waiting:
            return None
        sent.waiting.discard(invitee)
        if not sent.waiting:
            del self.sent[invitation]
        return sent.inviter

    def expire(self, now: float) -> list[tuple[int, int, int]]:
        """`(invitation, inviter, invitee)` for every invitee that did not answer in time
        (each once); what was received and not answered in time is forgotten."""
        out: list[tuple[int, int, int]] = []
        for invitation, sent in list(self.sent.items()):
            if sent.deadline <= now:
                out.extend((invitation, sent.inviter, invitee) for invitee in sorted(sent.waiting))
                del self.sent[invitation]
        for key, (_, deadline) in list(self.received.items()):
            if deadline <= now:
                del self.received[key]
        return out
