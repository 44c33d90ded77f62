"""Durable spins per second through the persistence writer: group commit vs one transaction per spin.

A "spin" is one money transaction as the game server commits it: the bet
(player -> house), a win for about 30% of spins (house -> player), a settled round
record with a 64-byte outcome blob, and a 64-byte stored reply. It counts when
its future resolved, i.e. after COMMIT returned (MariaDB with
``innodb_flush_log_at_trx_commit=1``; SQLite with WAL and ``synchronous=FULL``).

Cases, one line each:

- ``group``: closed loop, ``--concurrency`` players each with one spin in flight
  (the real server's shape: a player waits for the result before the next spin),
  through the group-commit writer (``--max-delay-ms``, ``--max-batch``). Reports
  the maximum durable rate and the commit wait (submit -> durable) p50/p99.
- ``single``: ``--single-concurrency`` players, but one database transaction per
  spin (``max_batch=1``), ``--single-inflight`` (8, the pool size) of them at once on
  separate connections, as a server without group commit would run them: the
  baseline group commit is measured against.
- ``half``: open loop at half the ``group`` rate (spins arrive on a fixed
  schedule whatever the latency), reporting the commit-wait percentiles at that load.

With ``--workers N`` each case runs in N processes, each with its own writer, its
own players and its own house account (``house:wK``, so workers never contend on
one hot row), like N workers of one node; rates are summed, percentiles pooled.
The load generator runs in the same processes (callbacks, no task per spin), on
uvloop like the game server. Each case reports the best rate of ``--repeat`` runs
(``half``: the run with the median p99), after listing every run.

Every line also gives the CPU cost of one durable spin: ``app`` is the CPU time of
the writer processes (load generator included) divided by the spins committed in
the measured window, ``db`` the same for the MariaDB server process when it runs on
this host (found by name under /proc). With both on the same cores, the ceiling is
about ``cores / (app + db)`` spins per second, whatever the batching.

``--backend sqlite,mysql`` (the default) runs both in one go and ends with the
ratios (group commit / one transaction per spin, MariaDB / SQLite), which are the
figures to compare between runs on a shared machine.

Run::

    make bench-store                      # both backends, 2 workers
    python -m bench.store --backend sqlite
    python -m bench.store --backend mysql [--url mysql://root@127.0.0.1:3306/croupier_bench]
    python -m bench.store --backend mysql --workers 2 --seconds 5 --max-inflight 1

The MySQL database (default ``croupier_bench``) is created and dropped; the SQLite
file goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvloop

from persistence import (
    PostingKind,
    RoundRecord,
    Txn,
    TxnResult,
    WriterConfig,
    open_stores,
    spin_txn,
    transfer,
)
from persistence.factory import Stores, default_writer_config, open_engine

T = TypeVar("T")
FUNDS = 10**15
STATE = bytes(range(64))
REPLY = bytes(range(64, 128))


@dataclass
class Run:
    """What one process measured in one case."""

    committed: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    batches: int = 0
    cpu: float = 0.0
    """CPU seconds of this process during the measured window."""
    db_cpu: float = -1.0
    """CPU seconds of the local MariaDB server in the window (worker 0 only; -1 unknown)."""


def _db_pid() -> int | None:
    """The PID of a MariaDB/MySQL server on this host, for CPU accounting (None if not found)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in ("mariadbd", "mysqld"):
                        return int(entry)
            except OSError:
                continue
    return None


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return -1.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return -1.0


class Window:
    """CPU of this process (and of the database server) between start() and stop()."""

    def __init__(self, run: Run, db_pid: int | None) -> None:
        self.run, self.db_pid = run, db_pid

    def start(self) -> None:
        self.cpu0, self.db0 = time.process_time(), _cpu_of(self.db_pid)

    def stop(self) -> None:
        self.run.cpu = time.process_time() - self.cpu0
        db1 = _cpu_of(self.db_pid)
        if self.db0 >= 0 and db1 >= 0:
            self.run.db_cpu = db1 - self.db0


def spin(worker: int, seq: int, user: int) -> Txn:
    player = f"w{worker}u{user}"
    round_id = f"w{worker}r{seq}"
    win = 250 if seq % 10 < 3 else 0
    return spin_txn(
        f"{round_id}:spin",
        player=player,
        house=f"house:w{worker}",
        currency="EUR",
        bet=100,
        win=win,
        round=RoundRecord(
            round_id=round_id,
            user_id=player,
            game_id="fruit_slot",
            game_version="1.0",
            math_version="96.5",
            currency="EUR",
            bet=100,
            win=win,
            state=STATE,
            session_id="s1",
            partner_id="demo",
        ),
        reply=REPLY,
    )


async def prepare(stores: Stores, worker: int, players: int) -> None:
    await stores.wallet.open_wallet(f"house:w{worker}", "EUR", allow_negative=True)
    txns = [
        Txn(
            key=f"w{worker}fund{u}",
            entries=transfer(f"house:w{worker}", f"w{worker}u{u}", "EUR", FUNDS, PostingKind.DEPOSIT),
        )
        for u in range(players)
    ]
    for i in range(0, len(txns), 500):
        outs = await stores.wallet.commit_batch(txns[i : i + 500], int(time.time() * 1000))
        assert all(isinstance(o, TxnResult) for o in outs)


class Load:
    """Submits spins and records the commit wait of each, with callbacks only."""

    def __init__(self, stores: Stores, worker: int, players: int, seq0: int) -> None:
        self.stores = stores
        self.worker = worker
        self.players = players
        self.seq = seq0
        self.run = Run()
        self.recording = False
        self.stopping = False
        self.inflight = 0
        self.idle = asyncio.Event()

    def submit(self, user: int, again: bool) -> None:
        self.seq += 1
        t0 = time.perf_counter()
        try:
            fut = self.stores.writer.submit(spin(self.worker, self.seq, user))
        except Exception:
            self.run.failed += self.recording
            return
        self.inflight += 1

        def done(f: asyncio.Future[TxnResult]) -> None:
            self.inflight -= 1
            ok = not f.cancelled() and f.exception() is None
            if self.recording:
                if ok:
                    self.run.committed += 1
                    self.run.latencies.append(time.perf_counter() - t0)
                else:
                    self.run.failed += 1
            if again and not self.stopping:
                self.submit(user, True)
            elif self.inflight == 0:
                self.idle.set()

        fut.add_done_callback(done)


async def closed_loop(
    stores: Stores, worker: int, players: int, seconds: float, seq0: int, db_pid: int | None = None
) -> Run:
    load = Load(stores, worker, players, seq0)
    window = Window(load.run, db_pid)
    for u in range(players):
        load.submit(u, True)
    await asyncio.sleep(min(1.0, seconds / 3))  # warm up
    load.recording = True
    window.start()
    b0, t0 = stores.writer.stats.batches, time.perf_counter()
    await asyncio.sleep(seconds)
    load.run.seconds = time.perf_counter() - t0
    load.recording = False
    window.stop()
    load.run.batches = stores.writer.stats.batches - b0
    load.stopping = True
    await load.idle.wait()
    return load.run


async def open_loop(
    stores: Stores,
    worker: int,
    players: int,
    seconds: float,
    rate: float,
    seq0: int,
    db_pid: int | None = None,
) -> Run:
    load = Load(stores, worker, players, seq0)
    window = Window(load.run, db_pid)
    tick = 0.001
    start = time.perf_counter()
    warm = min(1.0, seconds / 3)
    sent = 0
    user = 0
    b0 = 0
    while True:
        now = time.perf_counter() - start
        if now >= warm + seconds:
            break
        if not load.recording and now >= warm:
            load.recording, b0 = True, stores.writer.stats.batches
            window.start()
        due = int(now * rate) - sent
        for _ in range(due):
            load.submit(user, False)
            user = (user + 1) % players
        sent += due
        await asyncio.sleep(tick)
    load.run.seconds = seconds
    load.recording = False
    window.stop()
    load.run.batches = stores.writer.stats.batches - b0
    load.stopping = True
    if load.inflight:
        await load.idle.wait()
    return load.run


async def one_case(url: str, worker: int, case: str, opts: dict[str, Any]) -> Run:
    cfg = WriterConfig(
        max_delay_ms=opts["max_delay_ms"],
        max_batch=1 if case == "single" else opts["max_batch"],
        max_inflight=opts["single_inflight"]
        if case == "single"
        else opts["max_inflight"] or default_writer_config(url).max_inflight,
        max_queue=max(opts["concurrency"] * 4, opts["max_batch"]),
        commit_timeout_s=10.0,
    )
    stores = await open_stores(url, writer=cfg, migrate=False)
    db_pid = _db_pid() if url.startswith("mysql") and worker == 0 else None
    try:
        seq0 = opts["seq0"]
        if case == "half":
            return await open_loop(
                stores, worker, opts["concurrency"], opts["seconds"], opts["rate"], seq0, db_pid
            )
        return await closed_loop(stores, worker, opts["concurrency"], opts["seconds"], seq0, db_pid)
    finally:
        await stores.close()


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop, the game server's event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _child(url: str, worker: int, case: str, opts: dict[str, Any], conn: Any, go: Any) -> None:
    go.wait()
    conn.send(run_loop(one_case(url, worker, case, opts)))
    conn.close()


def run_case(url: str, workers: int, case: str, opts: dict[str, Any]) -> list[Run]:
    if workers == 1:
        return [run_loop(one_case(url, 0, case, opts))]
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    pipes, procs = [], []
    for w in range(workers):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(url, w, case, opts, child, go))
        p.start()
        pipes.append(parent)
        procs.append(p)
    time.sleep(0.5)
    go.set()
    runs = [p.recv() for p in pipes]
    for p in procs:
        p.join()
    return runs


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000.0


@dataclass
class Summary:
    rate: float
    p50: float
    p99: float
    failed: int
    per_batch: float
    app_us: float
    """CPU microseconds per durable spin in the writer processes (load generator included)."""
    db_us: float
    """CPU microseconds per durable spin in the database server (-1: not measured)."""


def summarise(runs: list[Run]) -> Summary:
    rate = sum(r.committed / r.seconds for r in runs if r.seconds)
    lat = [x for r in runs for x in r.latencies]
    batches = sum(r.batches for r in runs)
    committed = sum(r.committed for r in runs)
    failed = sum(r.failed for r in runs)
    cpu = sum(r.cpu for r in runs)
    db = max((r.db_cpu for r in runs), default=-1.0)
    return Summary(
        rate,
        pct(lat, 0.5),
        pct(lat, 0.99),
        failed,
        committed / batches if batches else 0.0,
        cpu / committed * 1e6 if committed else 0.0,
        db / committed * 1e6 if committed and db >= 0 else -1.0,
    )


async def setup_db(url: str, workers: int, players: int) -> None:
    stores = await open_stores(url, migrate=True)
    try:
        await stores.backend.clear()
        for w in range(workers):
            await prepare(stores, w, players)
    finally:
        await stores.close()


async def drop_mysql(url: str) -> None:
    from persistence.sql.mysql import MysqlEngine

    engine = await open_engine(url)
    assert isinstance(engine, MysqlEngine)
    try:
        await engine.drop_database()
    finally:
        await engine.close()


def run_backend(backend: str, url: str, args: argparse.Namespace) -> dict[str, Summary]:
    """Every case on one backend; returns the reported summary per case."""
    cases = args.cases.split(",")
    players = max(args.concurrency, args.single_concurrency)
    asyncio.run(setup_db(url, args.workers, players))
    best_group = 0.0
    seq0 = 0
    out: dict[str, Summary] = {}
    for case in cases:
        got_all: list[Summary] = []
        for _ in range(args.repeat):
            seq0 += 10_000_000
            opts = {
                "seconds": args.seconds,
                "concurrency": args.single_concurrency if case == "single" else args.concurrency,
                "max_delay_ms": args.max_delay_ms,
                "max_batch": args.max_batch,
                "max_inflight": args.max_inflight,
                "single_inflight": args.single_inflight,
                "rate": (args.half_rate or best_group / 2) / args.workers,
                "seq0": seq0,
            }
            if case == "half" and not (best_group or args.half_rate):
                raise SystemExit("the 'half' case needs the 'group' case first, or --half-rate")
            got_all.append(summarise(run_case(url, args.workers, case, opts)))
        if case == "half":  # the run with the median p99, not the luckiest one
            best = sorted(got_all, key=lambda g: g.p99)[len(got_all) // 2]
        else:  # the best rate
            best = max(got_all, key=lambda g: g.rate)
        if len(got_all) > 1:
            runs = ", ".join(f"{g.rate:,.0f}/s p99={g.p99:.1f}ms" for g in got_all)
            print(f"#   {backend} {case} runs: {runs}")
        if case == "group":
            best_group = best.rate
        out[case] = best
        label = {"group": "group commit", "single": "1 txn/spin  ", "half": "half rate   "}[case]
        extra = f" target={args.half_rate or best_group / 2:,.0f}/s" if case == "half" else ""
        cpu = f" cpu/spin: app={best.app_us:.0f}us" + (f" db={best.db_us:.0f}us" if best.db_us >= 0 else "")
        print(
            f"{backend:6} {label} {best.rate:10,.0f} durable spins/s  commit wait p50={best.p50:6.2f} ms "
            f"p99={best.p99:6.2f} ms  avg batch={best.per_batch:6.1f}  errors={best.failed}{cpu}{extra}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--backend", default="sqlite,mysql", help="sqlite, mysql, or both (comma-separated, one run)"
    )
    ap.add_argument(
        "--url",
        help="database URL for a single backend (default: a temp SQLite file / "
        "mysql://root@127.0.0.1:3306/croupier_bench)",
    )
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument(
        "--concurrency", type=int, default=2000, help="players with one spin in flight each (per worker)"
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--max-delay-ms", type=float, default=0.0, help="the writer's wait for others (the server default: 0)"
    )
    ap.add_argument("--max-batch", type=int, default=512)
    ap.add_argument(
        "--max-inflight",
        type=int,
        default=0,
        help="batches committing at once per writer (default: the store default, 1 SQLite, 2 MySQL)",
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        help="spins/s of the open-loop case (all workers); default: half the measured group rate",
    )
    ap.add_argument("--cases", default="group,single,half")
    ap.add_argument("--single-concurrency", type=int, default=200, help="players in the 'single' case")
    ap.add_argument(
        "--single-inflight", type=int, default=8, help="concurrent one-spin transactions in the 'single' case"
    )
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if any(b not in ("sqlite", "mysql") for b in backends):
        raise SystemExit(f"unknown backend in {args.backend!r}")
    if args.url and len(backends) != 1:
        raise SystemExit("--url needs a single --backend")
    print(
        f"# bench.store backends={','.join(backends)} workers={args.workers} cpus={os.cpu_count()} "
        f"max_delay_ms={args.max_delay_ms} max_batch={args.max_batch} max_inflight={args.max_inflight or 'store default'} "
        f"seconds={args.seconds} concurrency={args.concurrency}",
        flush=True,
    )
    results: dict[str, dict[str, Summary]] = {}
    for backend in backends:
        tmp = None
        if args.url:
            url = args.url
        elif backend == "mysql":
            url = "mysql://root@127.0.0.1:3306/croupier_bench"
        else:
            tmp = tempfile.mkdtemp(prefix="croupier-bench-")
            url = f"sqlite:///{tmp}/bench.db"
        try:
            results[backend] = run_backend(backend, url, args)
        finally:
            if backend == "mysql" and not args.url:
                asyncio.run(drop_mysql(url))
            if tmp is not None:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
    print("# ratios")
    for backend, got in results.items():
        if "group" in got and "single" in got and got["single"].rate:
            print(
                f"{backend:6} group commit / one txn per spin: {got['group'].rate / got['single'].rate:5.1f}x"
            )
    if {"sqlite", "mysql"} <= results.keys():
        for case in ("group", "single"):
            a, b = results["mysql"].get(case), results["sqlite"].get(case)
            if a and b and b.rate:
                print(f"mysql / sqlite ({case}): {a.rate / b.rate:5.2f}x")


if __name__ == "__main__":
    main()
