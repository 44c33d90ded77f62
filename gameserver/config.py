"""Server configuration: one TOML file plus environment overrides, all defaults here.

Precedence: environment variable > config file > default. Environment variables are
`CROUPIER_<SECTION>_<KEY>` (e.g. `CROUPIER_SERVER_WS_PORT=9000`,
`CROUPIER_AUTH_SECRET=...`, `CROUPIER_STORE_URL=mysql://...`). Zones and their casinos
(`[casino.zones.<zone>]`) are configured in the file only. Relations between
settings are checked at start-up (`Config.check`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import Struct, field

from games.bonus import BonusTemplate, DailyLogin
from games.missions import Mission
from games.referral import ReferralRule
from protocol.limits import SessionLimits
from rooms.config import ZoneConfig
from rooms.leaderboards.board import Eligibility, Metric, Operator, TieBreak
from rooms.leaderboards.periods import Period, PeriodConfig

DEV_SECRET = "croupier-dev-secret-change-me"


class Secret(str):
    """A string that does not show itself in repr() or logs."""

    def __repr__(self) -> str:
        return "Secret('**********')"


class ServerSection(Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    ws_port: int = 8800  # WebSocket, path /ws; 0 = pick a free port
    tcp_port: int = 8801  # length-prefixed MessagePack; -1 = disabled
    #: Admin HTTP (health, readiness, Prometheus metrics, stats); -1 = disabled.
    admin_port: int = -1
    sfs_tcp_port: int = -1  # SmartFoxServer 2X clients over TCP (9933 by convention); -1 = disabled
    ws_path: str = "/ws"
    #: The WebSocket stack: "picows" (fastest measured) or "websockets".
    transport: Literal["picows", "websockets"] = "picows"
    #: An echo endpoint for WebSocket conformance tests; empty = disabled.
    echo_path: str = ""
    #: Seconds between timeout sweeps.
    sweep_interval: float = 1.0
    backlog: int = 4096
    #: Move the survivors of each full garbage collection out of later ones (gc.freeze), so
    #: a full collection walks only newer objects (gameserver/gcwatch.py). A process setting:
    #: `croupier run` and cluster workers apply it, an embedding program decides for itself.
    gc_freeze: bool = True
    #: Seconds between one full collection of the frozen objects too (frees garbage cycles
    #: among them; one pause over every object: 648 ms at 16,000 sessions on the bench
    #: machine); 0 = never.
    gc_thaw_every: float = 3600.0
    #: Events (room messages, user and variable updates, leaderboard deltas...) are written
    #: at most this many milliseconds after they were raised, with whatever else the client
    #: got meanwhile, in one write (a send tick). Replies are written at the end of the
    #: loop tick and take the client's pending events with them. 0 = events as replies.
    event_tick_ms: float = 0.0


class NodeAddress(Struct, frozen=True, forbid_unknown_fields=True):
    """One node of a cluster: where its clients connect (`[[cluster.nodes]]`)."""

    host: str
    ws_port: int
    tcp_port: int = -1
    sfs_tcp_port: int = -1


class ClusterSection(Struct, frozen=True, forbid_unknown_fields=True):
    """Worker processes and nodes (docs/cluster.md)."""

    #: Worker processes on this node: 1 = one process, no supervisor (the default);
    #: 0 = one per CPU; N > 1 = a supervisor, an acceptor and N workers.
    workers: int = 1
    #: This node's position in `nodes` (0 with one node).
    node_index: int = 0
    #: Every node of the cluster, in the same order on every node; empty = this node only.
    #: Every node must run the same number of workers (the ring spans all of them).
    nodes: list[NodeAddress] = []
    #: Directory for the workers' Unix sockets (bus); empty = a fresh temporary directory.
    run_dir: str = ""
    #: Redis for the bus between nodes (`redis://host:6379/0`). Without it, with several
    #: nodes, rooms and users on other nodes cannot be reached (a warning at start-up).
    #: The workers of one node always talk over Unix sockets in `run_dir`.
    bus_url: str | None = None
    #: Channel prefix on that Redis: one per cluster, so that clusters can share a Redis.
    bus_prefix: str = "croupier:bus:"
    #: Seconds a request between workers (a room operation, a delivery) may take.
    bus_timeout: float = 2.0
    #: Seconds between the supervisor's lease renewals (heartbeats) to each worker.
    heartbeat_interval: float = 0.5
    #: A worker that has not answered for this long is replaced (and fenced: its lease,
    #: granted for this long, has run out, so it refuses to act if it wakes up).
    lease_timeout: float = 5.0
    #: Seconds a draining worker gets to finish rounds in flight before closing its clients.
    drain_timeout: float = 10.0
    #: SIGKILL a superseded (unresponsive) worker at once; false: only cut it off and let
    #: it fence itself when it wakes up (it exits when it sees its lease has run out).
    kill_superseded: bool = True
    #: Seconds between checkpoints of a worker's sessions and rooms (gameserver/checkpoint.py):
    #: after a crash its restarted process restores them and the clients resume. 0 = off
    #: (the clients of a crashed worker log in again).
    checkpoint_interval: float = 2.0
    #: This node is being added to a running cluster (it is the last of `nodes`): until its
    #: `POST /admin/nodes`, its acceptor sends every client to its owner on the ring of the
    #: nodes before it (docs/cluster.md, "Adding and removing nodes").
    joining: bool = False


class LimitsSection(Struct, frozen=True, forbid_unknown_fields=True):
    """Connection limits (see README, "Limits")."""

    max_message_bytes: int = 64 * 1024
    #: Bytes the kernel/transport may hold unsent for one client before it is closed as too slow.
    max_outgoing_bytes: int = 1024 * 1024
    max_pending_messages: int = 4096
    auth_timeout: float = 5.0
    idle_timeout: float = 60.0
    #: Advised client heartbeat period (sent at login); must be below idle_timeout.
    heartbeat_interval: float = 20.0
    #: How long a dropped session is kept for `resume` (0 = no resume).
    resume_grace: float = 30.0
    #: Events kept per session for replay on resume.
    replay_buffer: int = 256
    #: After sending a close, how long to wait for the client's close before dropping the socket.
    close_timeout: float = 2.0

    def session_limits(self) -> SessionLimits:
        return SessionLimits(
            max_message_bytes=self.max_message_bytes,
            max_pending_messages=self.max_pending_messages,
            auth_timeout=self.auth_timeout,
            idle_timeout=self.idle_timeout,
        )


class AuthSection(Struct, frozen=True, forbid_unknown_fields=True):
    #: HMAC-SHA256 key shared with the operator's auth service that mints login tokens.
    secret: str = DEV_SECRET
    #: Lifetime of tokens minted by `croupier token`, in seconds.
    token_ttl: int = 24 * 3600


class StoreSection(Struct, frozen=True, forbid_unknown_fields=True):
    """The database (money, rounds) and the optional cache; opened when a zone has a casino."""

    #: `memory://`, `sqlite:///./var/croupier.db` or `mysql://user@host:3306/db`.
    url: str = "sqlite:///./var/croupier.db"
    #: None (in-process) or `redis://host:6379/0`.
    cache_url: str | None = None
    #: Longest wait for one money commit before the request fails with `unavailable`.
    commit_timeout: float = 5.0
    #: Longest time a money commit waits for others to join its database transaction, in
    #: seconds. 0: none; a batch is what queued while the previous ones committed, which
    #: under load batches by itself. A wait trades latency (and a wake-up) for fewer commits.
    commit_delay: float = 0.0
    #: Keep bans, persistent room variables (static rooms), persistent user variables
    #: (registered users, restored at login) and the moderation audit log in the store
    #: (the store is also opened for this when no zone has a casino).
    zone_state: bool = False


class LotterySchedule(Struct, frozen=True, forbid_unknown_fields=True):
    """A recurring lottery (docs/casino.md, "Lotteries"): draw `n` sells tickets in
    `[start + n*period, start + (n+1)*period - cutoff)` and is drawn at `start + (n+1)*period`."""

    #: a lottery file of the catalogue (e.g. "lottery_6of49")
    game: str
    period_s: int = 86_400
    #: ticket sales close this long before the draw
    cutoff_s: int = 300
    #: epoch second the schedule is aligned to (the first draw opens then)
    start_s: int = 0
    #: epoch second after which no new draw opens (None = open-ended)
    end_s: int | None = None


class RewardsZone(Struct, frozen=True, forbid_unknown_fields=True):
    """A zone's lotteries, bonuses, missions and referral programme (gameserver/rewards)."""

    lotteries: list[LotterySchedule] = []
    #: daily login coins by streak day (the last repeats), days in `timezone`; none = off
    daily_login: DailyLogin | None = None
    #: offers: `no_deposit` and `free_spins` are claimed with `bonus_claim`; `deposit_match`
    #: is granted by the payment integration (`Rewards.deposit`)
    bonuses: list[BonusTemplate] = []
    missions: list[Mission] = []
    referral: ReferralRule | None = None
    #: pick-a-box games (catalogue names, cash prizes only) played with `pick_start` / `pick_open`
    pick_games: list[str] = []
    #: INT-4: a pick round left without a decision this long is finished by the documented
    #: default (the lowest unopened boxes are opened until the round ends)
    pick_timeout_s: int = 86_400
    #: the terms of bonus money won in mini-games (pick prizes of kind `bonus`: value x coin
    #: to the bonus balance, wagering_multiple x that); none = such games are refused
    minigame_bonus: BonusTemplate | None = None
    #: seconds between scheduler ticks (draws, referral releases, bonus expiry, pick time-outs)
    tick_s: float = 1.0


class CasinoZone(Struct, frozen=True, forbid_unknown_fields=True):
    """One zone's casino: the partner's game catalogue, its currency and its policy."""

    #: game name (a catalogue file, e.g. "fruit_slot") -> the RTP profile the partner chose.
    games: dict[str, str] = {}
    currency: str = "FUN"
    #: Welcome credit posted once per account (idempotency key `welcome:<zone>:<user>`).
    starting_balance: int = 0
    #: Responsible-gaming policy: "default" (permissive) or "gb", then field overrides
    #: of `games.policy.Policy` (e.g. `min_cycle_ms = 2500`).
    policy: str = "default"
    policy_overrides: dict[str, Any] = {}
    #: Mini-games bought with `minigame_play`: catalogue names of paid wheels and scratch
    #: cards whose prizes are all cash.
    minigames: list[str] = []
    #: Money value of one mini-game credit the player may choose.
    minigame_coin_values: tuple[int, ...] = (1, 5, 10, 25, 100)
    #: The house account the zone's bets go to and wins come from (may go negative).
    house_account: str = ""
    #: Lotteries, bonuses, missions and referrals (gameserver/rewards).
    rewards: RewardsZone = field(default_factory=RewardsZone)

    def house(self, zone: str) -> str:
        return self.house_account or f"house:{zone}"


class CasinoSection(Struct, frozen=True, forbid_unknown_fields=True):
    #: zone name -> its casino; zones not listed have no casino messages.
    zones: dict[str, CasinoZone] = {}
    #: Most rounds one `history` request returns.
    max_history: int = 50
    #: Load each player's wallet (and post a guest's welcome credit) at login, so the first
    #: spin is fast. False: at the first casino request (sessions that never play cost the
    #: store nothing: large idle soaks).
    warm_wallets: bool = True


class LeaderboardBoard(Struct, frozen=True, forbid_unknown_fields=True):
    """One board of a zone (`[leaderboards.zones.<zone>.<board>]`), fed by settled rounds.

    With `prizes` it is a tournament: at the end of each period (a recurring schedule)
    the final standings are archived and `prizes[0]` is credited to rank 1, `prizes[1]`
    to rank 2... once, through the ledger, from the zone's casino house account.
    """

    title: str = ""
    metric: Metric = Metric.TOTAL_WIN  # total_win | biggest_win | spins | mission_points
    operator: Operator = Operator.INCR  # best | set | incr | decr
    period: PeriodConfig = field(default_factory=PeriodConfig)  # all_time, daily, weekly, monthly, cron
    eligibility: Eligibility = field(default_factory=Eligibility)  # games, min_bet (minor units)
    top_n: int = 10  # size of the streamed top
    tie_break: TieBreak = TieBreak.EARLIEST  # earliest | split (ties share prizes)
    neighbours: int = 2  # rows above and below a subscriber's own standing in a snapshot
    #: Prize by rank, in the minor units of the zone's casino currency (empty: no prizes).
    prizes: list[int] = []
    #: "auto": every eligible player counts; "required": only players who sent `leaderboard_join`.
    join: Literal["auto", "required"] = "auto"
    #: The tournament series runs in [starts_at, ends_at) (epoch seconds; 0 = unbounded).
    starts_at: int = 0
    ends_at: int = 0


class LeaderboardsSection(Struct, frozen=True, forbid_unknown_fields=True):
    """Real-time leaderboards and tournaments (docs/leaderboards.md)."""

    #: zone name -> board name -> board.
    zones: dict[str, dict[str, LeaderboardBoard]] = {}
    #: Seconds between ticks (deltas are batched per tick).
    tick_interval: float = 0.25
    #: Seconds between score checkpoints to the store (one transaction each; a crash with the
    #: in-process bus loses at most this much; with the Redis bus events are acked after it).
    checkpoint_interval: float = 1.0
    #: Own-rank checks per board per tick (changed users first, then round-robin).
    rank_budget: int = 1000
    #: Deltas kept per board for gap recovery.
    history: int = 64
    #: Event pushes per loop iteration during a fan-out (session traffic runs in between).
    fanout_slice: int = 2000
    #: Boards one session may subscribe to.
    max_subscriptions: int = 16
    #: Round ids each board remembers per period to drop duplicates (the oldest are
    #: forgotten first; with the Redis bus, older ones are checked in the store).
    seen_limit: int = 200_000


class EventsSection(Struct, frozen=True, forbid_unknown_fields=True):
    """The domain event bus (round settled...): in-process, or Redis Streams across nodes."""

    #: None: in-process (LocalEvents); `redis://host:6379/0`: a Redis stream with consumer groups.
    url: str | None = None
    stream: str = "croupier:events"
    #: A pending entry idle this long (its consumer crashed) is claimed by another consumer.
    claim_idle: float = 30.0
    #: Approximate length the stream is trimmed to.
    maxlen: int = 1_000_000
    #: This node's name (consumer names, leaderboard owner); empty: "node-<pid>".
    node: str = ""


class Config(Struct, frozen=True, forbid_unknown_fields=True):
    server: ServerSection = field(default_factory=ServerSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    auth: AuthSection = field(default_factory=AuthSection)
    zones: list[ZoneConfig] = field(default_factory=list)
    store: StoreSection = field(default_factory=StoreSection)
    casino: CasinoSection = field(default_factory=CasinoSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    leaderboards: LeaderboardsSection = field(default_factory=LeaderboardsSection)
    events: EventsSection = field(default_factory=EventsSection)

    def check(self) -> None:
        """Raise ValueError if settings contradict each other."""
        lim = self.limits
        if self.server.gc_thaw_every < 0:
            raise ValueError("server.gc_thaw_every must be 0 (never) or more")
        if not 0 <= self.server.event_tick_ms <= 1000:
            raise ValueError("server.event_tick_ms must be 0 (no send tick) .. 1000")
        if lim.heartbeat_interval >= lim.idle_timeout:
            raise ValueError("limits.heartbeat_interval must be less than limits.idle_timeout")
        if lim.auth_timeout <= 0 or lim.idle_timeout <= 0:
            raise ValueError("limits.auth_timeout and limits.idle_timeout must be positive")
        if lim.max_message_bytes < 256:
            raise ValueError("limits.max_message_bytes must be at least 256")
        if lim.replay_buffer < 0 or lim.resume_grace < 0:
            raise ValueError("limits.replay_buffer and limits.resume_grace must not be negative")
        names = [z.name for z in self.zones]
        if len(names) != len(set(names)):
            raise ValueError("zone names must be unique")
        for z in self.zones:
            missing = set(z.default_groups) - set(z.groups) - {r.group for r in z.rooms}
            if missing:
                raise ValueError(f"zone {z.name!r}: default_groups not in groups: {sorted(missing)}")
        unknown = set(self.casino.zones) - set(names)
        if unknown:
            raise ValueError(f"casino.zones names unknown zones: {sorted(unknown)}")
        for zname, cz in self.casino.zones.items():
            if cz.starting_balance < 0:
                raise ValueError(f"casino.zones.{zname}.starting_balance must not be negative")
            if cz.policy not in ("default", "gb"):
                raise ValueError(f"casino.zones.{zname}.policy must be 'default' or 'gb'")
            if not cz.minigame_coin_values or min(cz.minigame_coin_values) <= 0:
                raise ValueError(f"casino.zones.{zname}.minigame_coin_values must be positive")
            if not cz.currency or len(cz.currency) > 16:
                raise ValueError(f"casino.zones.{zname}.currency must be 1-16 characters")
        if self.store.commit_timeout <= 0:
            raise ValueError("store.commit_timeout must be positive")
        if not 0 <= self.store.commit_delay < self.store.commit_timeout:
            raise ValueError("store.commit_delay must be >= 0 and below store.commit_timeout")
        cl = self.cluster
        if cl.workers < 0 or cl.workers > 256:
            raise ValueError("cluster.workers must be 0 (one per CPU) .. 256")
        if cl.nodes and cl.workers == 0:
            raise ValueError("cluster.nodes needs an explicit cluster.workers (the same on every node)")
        if cl.nodes and not 0 <= cl.node_index < len(cl.nodes):
            raise ValueError("cluster.node_index must index cluster.nodes")
        if cl.heartbeat_interval <= 0 or cl.lease_timeout <= 2 * cl.heartbeat_interval:
            raise ValueError("cluster.lease_timeout must be above twice cluster.heartbeat_interval")
        if cl.joining and (len(cl.nodes) < 2 or cl.node_index != len(cl.nodes) - 1):
            raise ValueError("cluster.joining: this node must be the last of two or more cluster.nodes")
        if cl.checkpoint_interval < 0:
            raise ValueError("cluster.checkpoint_interval must be 0 (off) or more")
        self._check_leaderboards(set(names))

    def _check_leaderboards(self, zones: set[str]) -> None:
        lb = self.leaderboards
        if lb.tick_interval <= 0 or lb.rank_budget < 0 or lb.history < 1 or lb.fanout_slice < 1:
            raise ValueError("leaderboards: tick_interval, history and fanout_slice must be positive")
        if lb.checkpoint_interval < 0 or lb.seen_limit < 1 or lb.max_subscriptions < 1:
            raise ValueError("leaderboards: checkpoint_interval, seen_limit, max_subscriptions out of range")
        unknown = set(lb.zones) - zones
        if unknown:
            raise ValueError(f"leaderboards.zones names unknown zones: {sorted(unknown)}")
        for zname, boards in lb.zones.items():
            for bname, b in boards.items():
                where = f"leaderboards.zones.{zname}.{bname}"
                if b.top_n < 1 or b.neighbours < 0:
                    raise ValueError(f"{where}: top_n must be at least 1, neighbours not negative")
                if b.metric == Metric.BIGGEST_WIN and b.operator != Operator.BEST:
                    raise ValueError(f"{where}: metric biggest_win needs operator best")
                if b.metric == Metric.MISSION_POINTS and b.eligibility.min_bet > 0:
                    raise ValueError(
                        f"{where}: a mission_points board scores missions, not bets: min_bet must be 0"
                    )
                if any(p < 0 for p in b.prizes):
                    raise ValueError(f"{where}: prizes must not be negative")
                if b.prizes and zname not in self.casino.zones:
                    raise ValueError(f"{where}: prizes need a casino in the zone (currency, house account)")
                if b.ends_at and b.ends_at <= b.starts_at:
                    raise ValueError(f"{where}: ends_at must be after starts_at")
                try:
                    Period(b.period)
                except (ValueError, KeyError) as exc:
                    raise ValueError(f"{where}.period: {exc}") from None
        if self.events.url is not None and not self.events.url.startswith(("redis://", "rediss://")):
            raise ValueError("events.url must be a redis:// URL (or unset for in-process events)")

    @property
    def secret(self) -> Secret:
        return Secret(self.auth.secret)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    sections = {
        "server": ServerSection,
        "limits": LimitsSection,
        "auth": AuthSection,
        "store": StoreSection,
        "cluster": ClusterSection,
        "events": EventsSection,
    }
    for section, cls in sections.items():
        for name in cls.__struct_fields__:
            key = f"CROUPIER_{section.upper()}_{name.upper()}"
            if key in environ:
                out.setdefault(section, {})[name] = environ[key]
    return out


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any), apply environment overrides, validate.

    Args:
        path: a TOML file; defaults to $CROUPIER_CONFIG; None/missing = built-in defaults.
        environ: the environment (os.environ by default).

    Raises:
        ValueError: a bad file, a bad value, or contradictory settings.
    """
    env = os.environ if environ is None else environ
    path = path or env.get("CROUPIER_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    for section, values in _env_overrides(env).items():
        raw.setdefault(section, {}).update(values)
    try:
        config = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad configuration: {exc}") from None
    config.check()
    return config
