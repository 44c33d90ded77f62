"""The top-N stream of one board: a snapshot on subscribe, then batched deltas per tick.

Protocol (the recovery model of Centrifugo: an offset per publication and an epoch per stream):

* ``seq`` counts the deltas of the stream (one per tick that changed the top N); it continues
  across resets. ``epoch`` names the stream generation: ``"<board>:<period start>:<instance>"``,
  so it changes on every reset and on every server restart (a new ``instance``).
* A client keeps ``(epoch, seq, top)``. It applies a delta when ``delta.seq == seq + 1`` and
  ``delta.epoch == epoch`` or (a reset) ``delta.prev_epoch == epoch``; anything else is a gap,
  and the client asks for a fresh snapshot (or ``recover(epoch, seq)`` from bounded history).
* Applying a delta: drop ``left`` users, then upsert ``entered`` and ``moved`` standings; the
  result ordered by ``position`` is the top N at that tick (``ClientView`` does exactly this).
* Own rank: ``MyRank`` messages, per subscriber, only when its standing changed; each carries
  the ``seq`` it is consistent with.

Bounded work per tick: the top-N diff is O(log n + N), skipped when the board did not change;
own-rank checks are at most ``rank_budget`` per tick: subscribers whose own score changed first,
then the others round-robin (so a rank pushed down by others is refreshed within
``subscribers / rank_budget`` ticks).
"""

from __future__ import annotations

from collections import deque

from msgspec import Struct

from rooms.leaderboards.board import Leaderboard, Standing


class Snapshot(Struct, frozen=True):
    board_id: str
    epoch: str
    seq: int
    window: tuple[int, int]
    top: list[Standing]
    me: Standing | None
    neighbours: list[Standing]


class Delta(Struct, frozen=True):
    board_id: str
    epoch: str
    seq: int
    entered: list[Standing]
    left: list[str]
    moved: list[Standing]
    #: Set on the first delta of a new period (``epoch`` changed): the previous epoch.
    prev_epoch: str | None = None
    window: tuple[int, int] | None = None


class MyRank(Struct, frozen=True):
    user_id: str
    epoch: str
    seq: int
    me: Standing | None


class Tick(Struct, frozen=True):
    delta: Delta | None
    mine: list[MyRank]


class LeaderboardStream:
    __slots__ = (
        "board",
        "instance",
        "epoch",
        "seq",
        "rank_budget",
        "_last",
        "_version",
        "_history",
        "_subs",
        "_rotation",
        "_rotating",
        "_pending",
        "_key",
    )

    def __init__(
        self, board: Leaderboard, instance: str = "0", history: int = 64, rank_budget: int = 1000
    ) -> None:
        self.board = board
        self.instance = instance
        self._key = board.key
        self.epoch = self._epoch_name()
        self.seq = 0
        self.rank_budget = rank_budget
        self._last: dict[str, Standing] = {s.user_id: s for s in board.top()}
        self._version = board.version
        self._history: deque[Delta] = deque(maxlen=history)
        self._subs: dict[str, Standing | None] = {}
        self._rotation: deque[str] = deque()
        #: who is in `_rotation` (an unsubscribed user stays there until the rotation reaches it)
        self._rotating: set[str] = set()
        self._pending: set[str] = set()  # subscribers whose own score changed, not yet checked

    def _epoch_name(self) -> str:
        board_id, start = self.board.key
        return f"{board_id}:{start}:{self.instance}"

    # -- subscribers -----------------------------------------------------------------

    def snapshot(self, user_id: str | None = None) -> Snapshot:
        """The top N as of the last tick, with the user's current standing and neighbours."""
        me = self.board.standing(user_id) if user_id else None
        neighbours = self.board.around(user_id) if user_id else []
        top = sorted(self._last.values(), key=lambda s: s.position)
        window = (self.board.start, self.board.end)
        return Snapshot(self.board.config.id, self.epoch, self.seq, window, top, me, neighbours)

    def subscribe(self, user_id: str) -> Snapshot:
        snap = self.snapshot(user_id)
        if user_id not in self._rotating:
            self._rotation.append(user_id)
            self._rotating.add(user_id)
        self._subs[user_id] = snap.me
        return snap

    def unsubscribe(self, user_id: str) -> None:
        if user_id in self._subs:
            del self._subs[user_id]
            # O(1): dropped from the rotation lazily (a mass disconnect of n subscribers
            # must not cost n * n)
            self._pending.discard(user_id)

    def recover(self, epoch: str, seq: int) -> list[Delta] | None:
        """The deltas after ``(epoch, seq)`` from bounded history, or None (take a snapshot)."""
        if epoch == self.epoch and seq == self.seq:
            return []
        out: list[Delta] = []
        for d in self._history:
            if d.seq > seq:
                out.append(d)
        if not out or out[0].seq != seq + 1 or epoch not in (out[0].epoch, out[0].prev_epoch):
            return None
        return out

    # -- the tick --------------------------------------------------------------------

    def tick(self, now: float) -> Tick:
        board = self.board
        prev_epoch: str | None = None
        board.roll(now)
        if board.key != self._key:  # reset, by the clock or by an event of a later window
            self._key = board.key
            prev_epoch, self.epoch = self.epoch, self._epoch_name()
        delta = None
        if board.version != self._version or prev_epoch is not None:
            self._version = board.version
            delta = self._diff(prev_epoch)
        return Tick(delta, self._own_ranks(force=prev_epoch is not None))

    def _diff(self, prev_epoch: str | None) -> Delta | None:
        current = {s.user_id: s for s in self.board.top()}
        last = self._last
        left = [u for u in last if u not in current]
        entered: list[Standing] = []
        moved: list[Standing] = []
        for user_id, row in current.items():
            old = last.get(user_id)
            if old is None:
                entered.append(row)
            elif old != row:
                moved.append(row)
        self._last = current
        if not (left or entered or moved or prev_epoch):
            return None
        self.seq += 1
        window = (self.board.start, self.board.end) if prev_epoch else None
        delta = Delta(self.board.config.id, self.epoch, self.seq, entered, left, moved, prev_epoch, window)
        self._history.append(delta)
        return delta

    def _own_ranks(self, force: bool) -> list[MyRank]:
        board = self.board
        touched, board.touched = board.touched, set()
        self._pending.update(u for u in touched if u in self._subs)
        out: list[MyRank] = []
        if force:
            self._pending.clear()
            for user_id in self._subs:
                self._check(user_id, out)
            return out
        budget = self.rank_budget
        # subscribers whose own score changed go first ...
        while self._pending and budget > 0:
            self._check(self._pending.pop(), out)
            budget -= 1
        # ... then the others, round-robin (their rank moves when others pass them)
        rotation, stale = self._rotation, budget  # also at most `budget` stale entries dropped
        for _ in range(min(budget, len(rotation))):
            user_id = rotation[0]
            while user_id not in self._subs and stale > 0:
                rotation.popleft()
                self._rotating.discard(user_id)
                stale -= 1
                if not rotation:
                    return out
                user_id = rotation[0]
            if user_id not in self._subs:
                break
            rotation.rotate(-1)
            self._check(user_id, out)
        return out

    def _check(self, user_id: str, out: list[MyRank]) -> None:
        me = self.board.standing(user_id)
        if me != self._subs[user_id]:
            self._subs[user_id] = me
            out.append(MyRank(user_id, self.epoch, self.seq, me))


class ClientView:
    """What a client holds: the reference for applying deltas (and for the consistency tests)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.epoch = snapshot.epoch
        self.seq = snapshot.seq
        self.rows: dict[str, Standing] = {s.user_id: s for s in snapshot.top}

    def apply(self, delta: Delta) -> bool:
        """Apply the next delta; False on a gap (the client must take a fresh snapshot)."""
        if delta.seq != self.seq + 1 or self.epoch not in (delta.epoch, delta.prev_epoch):
            return False
        for user_id in delta.left:
            self.rows.pop(user_id, None)
        for row in delta.entered:
            self.rows[row.user_id] = row
        for row in delta.moved:
            self.rows[row.user_id] = row
        self.epoch, self.seq = delta.epoch, delta.seq
        return True

    def top(self) -> list[Standing]:
        return sorted(self.rows.values(), key=lambda s: s.position)
