"""Scenarios as data: a TOML or JSON file of session profiles, steps, actions and criteria.

A scenario says what each simulated session does (its *profile*: a list of *steps*),
how fast sessions are opened (*ramp*), what the harness does to the run (*actions*:
drop every connection, restart the servers one by one) and what makes the run pass
(*criteria*). docs/bench.md describes every field; bench/scenarios/ has examples.

A step names an `op`. Most ops are *presets*: a message type plus default fields
(`PRESETS` below); `request` sends any `type` with the step's `fields`; `login`, `idle`
and `close` are built in. Supporting a new server message (a spin, a lottery ticket) is
one line in `PRESETS`, or no code at all with `op = "request"`.

Field values may name session variables: a string that is exactly `"$var"` is replaced
by the variable's value, and `$name` / `$index` inside longer strings are replaced
too. Variables: `index` (the session's number), `name`, `user` (the id from login),
`now_ms` (the client clock), and whatever earlier steps saved with `save`
(`join_room` saves the joined room's id as `room`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field


class Preset(Struct, frozen=True):
    """A message type with default fields and what to keep from its `ok` reply."""

    type: str
    fields: dict[str, Any] = {}
    save: dict[str, str] = {}
    #: error codes that still count as success (e.g. 203 already_in_room)
    accept: tuple[int, ...] = ()
    #: True if the server does not have this message yet (documentation only)
    planned: bool = False


#: Step ops that map onto one request. Planned ones are answered `unknown_message` by
#: today's server; the harness reports them as "not supported by server".
PRESETS: dict[str, Preset] = {
    "ping": Preset("ping", {"t": "$now_ms"}),
    "join_room": Preset("join_room", {"room": "Lobby"}, save={"room": "room.id"}, accept=(203,)),
    "leave_room": Preset("leave_room", {"room": "$room"}),
    "chat": Preset("public_message", {"room": "$room", "text": "hello from $name"}),
    "list_rooms": Preset("list_rooms"),
    "subscribe_group": Preset("subscribe_group", {"group": "default"}, accept=(209,)),
    "set_user_variables": Preset(
        "set_user_variables", {"variables": [{"name": "status", "value": "playing"}]}
    ),
    # casino (a zone with a [casino] section; coin and lines default to the smallest coin
    # and every line)
    "spin": Preset("spin", {"game": "fruit_slot"}),
    "balance": Preset("balance"),
    "game_info": Preset("game_info"),
    "history": Preset("history", {"limit": 10}),
    "minigame": Preset("minigame_play", {"game": "scratch_card"}),
    # Not wired into the server yet: the names are guesses; fix them here (or in a
    # scenario with `type`/`fields`) when the server gains the message.
    "leaderboard": Preset("subscribe_leaderboard", {"board": "daily"}, planned=True),
    "lottery": Preset("buy_lottery_ticket", {"draw": "daily", "tickets": 1}, planned=True),
}

BUILTIN_OPS = frozenset({"login", "idle", "close", "request"})

Positive = Annotated[float, Meta(ge=0)]


class Step(Struct, frozen=True, forbid_unknown_fields=True):
    """One thing a session does.

    A step with `every` > 0 is *periodic*: it repeats at that period (randomised by
    `jitter`) until the session ends, or `count` times if `count` > 0; replies are
    matched as they come. Any other step is *one-shot*: it runs `count` times in order,
    each time waiting for its reply, before the next step starts.
    """

    @property
    def times(self) -> int:
        """How many sends: 0 means "until the session ends" (periodic steps)."""
        if self.count is not None:
            return self.count
        return 0 if self.periodic else 1

    op: str
    #: name in the report; defaults to `op`
    label: str = ""
    #: message type, for `op = "request"` (or to override a preset's)
    type: str = ""
    fields: dict[str, Any] = {}
    every: Positive = 0.0
    jitter: Annotated[float, Meta(ge=0, le=1)] = 0.2
    #: one-shot: how many times (default 1); periodic: how many sends (default: no limit)
    count: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    #: for `idle`: how long to wait
    seconds: Positive = 0.0
    #: seconds to wait for a reply before counting a timeout
    timeout: Annotated[float, Meta(gt=0)] = 10.0
    #: session variable -> dotted path into the reply's `data`
    save: dict[str, str] = {}
    #: error codes counted as success for this step
    accept: list[int] = []
    #: for `login`: log in with a resume token if a previous connection had one
    resume: bool = True

    @property
    def name(self) -> str:
        return self.label or self.op

    @property
    def periodic(self) -> bool:
        return self.every > 0


class Profile(Struct, frozen=True, forbid_unknown_fields=True):
    """A kind of session; `weight` is its share of all sessions."""

    name: str
    steps: list[Step]
    weight: Annotated[float, Meta(gt=0)] = 1.0


class Ramp(Struct, frozen=True, forbid_unknown_fields=True):
    #: new connections per second over all generator processes; 0 = as fast as possible
    rate: Positive = 1000.0
    #: connections being opened (TCP + upgrade + login) at once, per generator process
    concurrency: Annotated[int, Meta(ge=1, le=18_000)] = 200
    #: seconds after the ramp before replies count toward `hold_latency` (work the ramp
    #: queued on the server, e.g. wallet loads after logins, drains first)
    settle: Positive = 0.0


class Reconnect(Struct, frozen=True, forbid_unknown_fields=True):
    """What a session does when its connection goes away during the run."""

    enabled: bool = True
    #: resume with the login's token first (falls back to a fresh login)
    resume: bool = True
    backoff_min: Positive = 0.2
    backoff_max: Positive = 5.0
    #: attempts per drop before the session gives up (counted as an error)
    max_attempts: Annotated[int, Meta(ge=1, le=1000)] = 30


class Action(Struct, frozen=True, forbid_unknown_fields=True):
    """Something the harness does, `at` seconds after the ramp has finished.

    `drop_all`: every generator aborts `fraction` of its connections at once (no close
    frame) and the sessions reconnect, each after a random delay up to `spread` s.
    `churn`: from `at` to the end of the hold, every `interval` s each generator closes
    `fraction` of its sessions cleanly (1000: the server ends them) and they log in
    again as new sessions after a random delay up to `spread` s (spec B6).
    `rolling_restart`: each server process in turn gets SIGTERM (it drains with 1001),
    is started again on its port, and after `interval` s the next one follows.
    """

    kind: Literal["drop_all", "churn", "rolling_restart"]
    at: Positive = 5.0
    fraction: Annotated[float, Meta(gt=0, le=1)] = 1.0
    spread: Positive = 5.0
    interval: Positive = 2.0


class Criterion(Struct, frozen=True, forbid_unknown_fields=True):
    """A pass condition on a report value, named by its dotted path (docs/bench.md)."""

    metric: str
    max: float | None = None
    min: float | None = None
    #: pass when the metric has no value (e.g. no samples); default: fail
    allow_missing: bool = False


class ServerSettings(Struct, frozen=True, forbid_unknown_fields=True):
    """How the harness starts `gameserver run` processes (ignored with --target)."""

    #: config file; empty = the server's default (config/croupier.toml)
    config: str = ""
    #: the money store of each server process: "sqlite" (a new file per process in the
    #: run's output directory), "memory", "config" (whatever the config file says: may
    #: be one file shared by every process), or a store URL
    store: str = "sqlite"
    #: extra environment, e.g. {CROUPIER_LIMITS_IDLE_TIMEOUT = "60"}
    env: dict[str, str] = {}
    #: scheduling niceness of each server process (0-19). Above 0, the generators, which
    #: stand in for clients on other machines, get the CPU first when the machine is
    #: full, so their own run-queue wait does not count as server latency
    nice: Annotated[int, Meta(ge=0, le=19)] = 0


class Scenario(Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    profiles: list[Profile]
    description: str = ""
    codec: Literal["msgpack", "json"] = "msgpack"
    zone: str = "demo"
    name_prefix: str = "bot"
    #: defaults for the command line's --connections / --duration
    connections: Annotated[int, Meta(ge=1)] = 1000
    duration: Positive = 30.0
    ramp: Ramp = field(default_factory=Ramp)
    reconnect: Reconnect = field(default_factory=Reconnect)
    actions: list[Action] = []
    criteria: list[Criterion] = []
    server: ServerSettings = field(default_factory=ServerSettings)

    def check(self) -> None:
        """Raise ValueError for an inconsistent scenario."""
        if not self.profiles:
            raise ValueError("a scenario needs at least one profile")
        for p in self.profiles:
            if not p.steps or p.steps[0].op != "login":
                raise ValueError(f"profile {p.name!r}: the first step must be `login`")
            for s in p.steps:
                if s.op not in PRESETS and s.op not in BUILTIN_OPS:
                    known = ", ".join(sorted([*PRESETS, *BUILTIN_OPS]))
                    raise ValueError(f"profile {p.name!r}: unknown op {s.op!r} (known: {known})")
                if s.op == "request" and not s.type:
                    raise ValueError(f"profile {p.name!r}: op `request` needs `type`")
                if s.op == "login" and s.periodic:
                    raise ValueError(f"profile {p.name!r}: `login` cannot be periodic")
                if s.periodic and s.op in ("idle", "close"):
                    raise ValueError(f"profile {p.name!r}: `{s.op}` cannot be periodic")
            if any(s.op == "login" for s in p.steps[1:]):
                raise ValueError(f"profile {p.name!r}: only the first step may be `login`")


def parse(data: bytes, fmt: str) -> Scenario:
    """A scenario from TOML (`fmt="toml"`) or JSON bytes."""
    try:
        raw = tomllib.loads(data.decode("utf-8")) if fmt == "toml" else json.loads(data)
        sc = msgspec.convert(raw, Scenario)
    except (
        tomllib.TOMLDecodeError,
        json.JSONDecodeError,
        msgspec.ValidationError,
        UnicodeDecodeError,
    ) as exc:
        raise ValueError(f"bad scenario: {exc}") from None
    sc.check()
    return sc


def load(path: str | Path) -> Scenario:
    """Read a scenario file (.toml or .json)."""
    p = Path(path)
    return parse(p.read_bytes(), "json" if p.suffix == ".json" else "toml")


def message_for(step: Step) -> tuple[str, dict[str, Any], dict[str, str], frozenset[int]]:
    """A request step's message type, fields, saved variables and accepted error codes."""
    preset = PRESETS.get(step.op)
    if preset is None:
        return step.type, dict(step.fields), dict(step.save), frozenset(step.accept)
    return (
        step.type or preset.type,
        {**preset.fields, **step.fields},
        {**preset.save, **step.save},
        frozenset(preset.accept) | frozenset(step.accept),
    )


def assign_profile(index: int, weights: list[float]) -> int:
    """The profile of session `index`: a low-discrepancy walk over the weights.

    Any run of consecutive indices gets each profile in proportion to its weight (a 1%
    profile gets every 100th session or so), so every generator and server sees the mix.
    """
    total = sum(weights)
    u = (index * 0.6180339887498949) % 1.0 * total
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1
