"""One leaderboard: config, settled-round events applied idempotently inside the current window.

A board is keyed by ``(board id, period start)``: a reset does not clear scores in place, it
moves the board to a new key with an empty rank index (the previous one is kept as
``previous`` for payouts). Events are applied by their **settlement** time: a round counts in
the window ``[start, end)`` holding ``settled_at``; a round settled before the current window
starts is ``LATE`` and ignored; one settled at or after its end first rolls the board forward.

Pure: no I/O; every time is an injected epoch-seconds value.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from msgspec import Struct, field

from rooms.leaderboards.periods import Period, PeriodConfig
from rooms.leaderboards.ranking import RankIndex


class Metric(StrEnum):
    TOTAL_WIN = "total_win"  # the round's win
    BIGGEST_WIN = "biggest_win"  # the round's win (use with BEST)
    SPINS = "spins"  # 1 per round
    MISSION_POINTS = "mission_points"  # the event's points


class Operator(StrEnum):
    BEST = "best"  # keep the highest value seen
    SET = "set"  # the latest value replaces the score
    INCR = "incr"  # add the value
    DECR = "decr"  # subtract the value


class TieBreak(StrEnum):
    EARLIEST = "earliest"  # equal scores: whoever reached the score first ranks higher
    SPLIT = "split"  # equal scores share a rank (and the prizes of the ranks they occupy)


class Eligibility(Struct, frozen=True, forbid_unknown_fields=True):
    games: list[str] = []  # empty: every game
    min_bet: int = 0  # minor units


class LeaderboardConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """One board of a zone."""

    id: str
    metric: Metric = Metric.TOTAL_WIN
    operator: Operator = Operator.INCR
    period: PeriodConfig = field(default_factory=PeriodConfig)
    eligibility: Eligibility = field(default_factory=Eligibility)
    top_n: int = 10  # size of the streamed top
    tie_break: TieBreak = TieBreak.EARLIEST
    neighbours: int = 2  # entries above and below a subscriber's own rank in a snapshot


class RoundSettled(Struct, frozen=True):
    """A settled round, as the wallet/game side reports it (amounts in minor units)."""

    round_id: str
    user_id: str
    name: str
    game: str
    bet: int
    win: int
    settled_at: float
    points: int = 0


class Outcome(StrEnum):
    APPLIED = "applied"  # the score changed
    UNCHANGED = "unchanged"  # counted, but the score stayed (e.g. BEST with a lower value)
    DUPLICATE = "duplicate"  # this round id was already seen in this window
    INELIGIBLE = "ineligible"  # game or bet outside the rules
    LATE = "late"  # settled before the current window


class Standing(Struct, frozen=True):
    """A row of the board: ``position`` is the place in the total order (1..n), ``rank`` the
    displayed rank (equal to ``position`` with EARLIEST, shared by ties with SPLIT)."""

    position: int
    rank: int
    user_id: str
    name: str
    score: int


class Leaderboard:
    __slots__ = (
        "config",
        "period",
        "start",
        "end",
        "index",
        "names",
        "version",
        "previous",
        "touched",
        "seen_limit",
        "forgotten_until",
        "_seen",
    )

    def __init__(self, config: LeaderboardConfig, now: float, seen_limit: int = 1_000_000) -> None:
        if config.top_n < 1:
            raise ValueError("top_n must be at least 1")
        self.config = config
        self.period = Period(config.period)
        self.start, self.end = self.period.window(now)
        self.index = RankIndex()
        self.names: dict[str, str] = {}
        #: Bumped on every change of the ranking (the stream skips unchanged ticks).
        self.version = 0
        #: The last finished period: (key, rank index, names), for payouts.
        self.previous: tuple[tuple[str, int], RankIndex, dict[str, str]] | None = None
        #: Users whose score changed since the consumer (the stream) last drained this set.
        self.touched: set[str] = set()
        #: Round ids remembered per window, oldest forgotten first beyond this many (memory
        #: stays bounded at any round rate). A duplicate settled at or before
        #: `forgotten_until` may not be recognised: the caller checks those elsewhere.
        self.seen_limit = seen_limit
        self.forgotten_until = float("-inf")
        self._seen: dict[str, float] = {}  # round id -> settled at, in arrival order

    @property
    def key(self) -> tuple[str, int]:
        return (self.config.id, self.start)

    def roll(self, now: float) -> bool:
        """Move to the window holding ``now`` if the current one has ended; True on a reset."""
        if now < self.end:
            return False
        self.previous = (self.key, self.index, self.names)
        self.start, self.end = self.period.window(now)
        self.index = RankIndex()
        self.names = {}
        self._seen = {}
        self.forgotten_until = float("-inf")
        self.touched = set()
        self.version += 1
        return True

    def apply(self, event: RoundSettled) -> Outcome:
        at = event.settled_at
        if at >= self.end:
            self.roll(at)
        if at < self.start:
            return Outcome.LATE
        seen = self._seen
        if event.round_id in seen:
            return Outcome.DUPLICATE
        seen[event.round_id] = at
        if len(seen) > self.seen_limit:
            oldest = next(iter(seen))
            self.forgotten_until = max(self.forgotten_until, seen.pop(oldest))
        rules = self.config.eligibility
        if (rules.games and event.game not in rules.games) or event.bet < rules.min_bet:
            return Outcome.INELIGIBLE
        metric = self.config.metric
        if metric is Metric.SPINS:
            value = 1
        elif metric is Metric.MISSION_POINTS:
            value = event.points
        else:
            value = event.win
        current = self.index.get(event.user_id)
        op = self.config.operator
        if current is None:
            score = -value if op is Operator.DECR else value
        elif op is Operator.BEST:
            score = max(current[0], value)
        elif op is Operator.SET:
            score = value
        elif op is Operator.INCR:
            score = current[0] + value
        else:
            score = current[0] - value
        self.names[event.user_id] = event.name
        if current is not None and score == current[0]:
            return Outcome.UNCHANGED
        subscore = self.subscore_of(at)
        self.index.insert(event.user_id, score, subscore)
        self.touched.add(event.user_id)
        self.version += 1
        return Outcome.APPLIED

    def has_seen(self, round_id: str) -> bool:
        """Whether this round id was already counted in the current window."""
        return round_id in self._seen

    def mark_seen(self, round_id: str) -> None:
        """Remember a round id counted before a restart (from the store's dedupe markers)."""
        self._seen[round_id] = self.start

    def restore(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Refill the current window from stored ``(owner_id, name, score, subscore)`` rows
        (the boot path). Replaces the index; the round ids seen are not restored."""
        rows = list(rows)
        self.index.fill((owner, score, sub) for owner, _name, score, sub in rows)
        self.names = {owner: name for owner, name, _score, _sub in rows}
        self.version += 1

    def subscore_of(self, settled_at: float) -> int:
        """The tie-break subscore a round settled at ``settled_at`` gets."""
        return int(settled_at * 1000) if self.config.tie_break is TieBreak.EARLIEST else 0

    # -- queries ---------------------------------------------------------------------

    def _standing(self, position: int, user_id: str, score: int) -> Standing:
        rank = position
        if self.config.tie_break is TieBreak.SPLIT:
            rank = self.index.count_better(score) + 1
        return Standing(position, rank, user_id, self.names.get(user_id, ""), score)

    def top(self, n: int | None = None) -> list[Standing]:
        """The first ``n`` standings (default ``top_n``). O(log n + n)."""
        rows = self.index.top(self.config.top_n if n is None else n)
        if self.config.tie_break is TieBreak.EARLIEST:
            return [
                Standing(r.rank, r.rank, r.owner_id, self.names.get(r.owner_id, ""), r.score) for r in rows
            ]
        out: list[Standing] = []
        for r in rows:
            shared = (
                out[-1].rank if out and out[-1].score == r.score else self.index.count_better(r.score) + 1
            )
            out.append(Standing(r.rank, shared, r.owner_id, self.names.get(r.owner_id, ""), r.score))
        return out

    def standing(self, user_id: str) -> Standing | None:
        position = self.index.rank(user_id)
        if position is None:
            return None
        got = self.index.get(user_id)
        assert got is not None
        return self._standing(position, user_id, got[0])

    def around(self, user_id: str) -> list[Standing]:
        """The user's standing with ``neighbours`` rows above and below."""
        k = self.config.neighbours
        return [self._standing(r.rank, r.owner_id, r.score) for r in self.index.around(user_id, k, k)]


def prize_shares(standings: list[Standing], prizes: list[int]) -> dict[str, int]:
    """Prizes by user for a final ranking (``prizes[0]`` for rank 1, ...).

    With SPLIT ranks, a tie group occupying positions p..q shares the sum of the prizes for
    those positions equally; the indivisible remainder goes one unit each to the group's
    first members in position order (deterministic). With EARLIEST every rank is distinct."""
    out: dict[str, int] = {}
    i = 0
    while i < len(standings):
        j = i
        while j + 1 < len(standings) and standings[j + 1].rank == standings[i].rank:
            j += 1
        pot = sum(prizes[p] for p in range(i, j + 1) if p < len(prizes))
        size = j - i + 1
        share, extra = divmod(pot, size)
        for n, row in enumerate(standings[i : j + 1]):
            if pot:
                out[row.user_id] = share + (1 if n < extra else 0)
        i = j + 1
    return out
