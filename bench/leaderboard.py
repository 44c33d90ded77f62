"""Leaderboard core costs at 100k entries (pure, in-process, no I/O).

Measures, best of several repeats, one line per case:

* rank index updates/s (an existing owner gets a new score: remove + insert) at 100k owners,
  for the blocked sorted list with several block loads, against a plain sorted list kept with
  ``bisect.insort`` (the O(n)-memmove baseline);
* rank queries/s (``rank(owner)``) and k-th queries/s (``kth(r)``) at 100k owners;
* board events/s (``Leaderboard.apply`` of settled rounds, INCR total win) at 100k players;
* tick cost: one ``LeaderboardStream.tick`` after 10k updates, top 10 / top 100, with 1,000
  subscribers (own-rank budget 1,000).

Run: ``python -m bench.leaderboard``
"""

from __future__ import annotations

import random
import time
import timeit
from bisect import bisect_left, insort

from rooms.leaderboards.board import Leaderboard, LeaderboardConfig, RoundSettled
from rooms.leaderboards.ranking import RankIndex
from rooms.leaderboards.stream import LeaderboardStream

N = 100_000
OPS = 20_000
REPEATS = 3
T0 = 1_796_083_200


def owners() -> list[str]:
    return [f"user-{i:06}" for i in range(N)]


def filled(load: int, rng: random.Random) -> RankIndex:
    index = RankIndex(load=load)
    index.fill((o, rng.randrange(1_000_000), rng.randrange(1 << 40)) for o in owners())
    return index


def case(name: str, ops: int, seconds: float, unit: str = "ops/s") -> None:
    print(f"{name:<58} {ops / seconds:>12,.0f} {unit}", flush=True)


def bench_updates() -> None:
    rng = random.Random(1)
    names = owners()
    for load in (128, 512, 2048):
        index = filled(load, rng)
        plan = [(rng.choice(names), rng.randrange(1_000_000), rng.randrange(1 << 40)) for _ in range(OPS)]

        def run(index: RankIndex = index, plan: list[tuple[str, int, int]] = plan) -> None:
            for owner, score, sub in plan:
                index.insert(owner, score, sub)

        case(
            f"RankIndex(load={load}) update, {N:,} owners",
            OPS,
            min(timeit.repeat(run, number=1, repeat=REPEATS)),
        )
    # baseline: one sorted list of keys + dict, bisect.insort (O(n) memmove per insert)
    keys: dict[str, tuple[int, int, str]] = {o: (-rng.randrange(1_000_000), 0, o) for o in names}
    flat = sorted(keys.values())
    flat_plan = [(rng.choice(names), rng.randrange(1_000_000)) for _ in range(OPS)]

    def run_flat() -> None:
        for owner, score in flat_plan:
            old = keys[owner]
            del flat[bisect_left(flat, old)]
            new = (-score, 0, owner)
            keys[owner] = new
            insort(flat, new)

    case(
        f"plain sorted list + insort update, {N:,} owners",
        OPS,
        min(timeit.repeat(run_flat, number=1, repeat=REPEATS)),
    )


def bench_queries() -> None:
    rng = random.Random(2)
    index = filled(512, rng)
    everyone = owners()
    names = [rng.choice(everyone) for _ in range(OPS)]
    ranks = [rng.randrange(1, N + 1) for _ in range(OPS)]

    def run_rank() -> None:
        for o in names:
            index.rank(o)

    def run_kth() -> None:
        for r in ranks:
            index.kth(r)

    def run_top() -> None:
        for _ in range(1000):
            index.top(100)

    case(f"RankIndex rank(owner), {N:,} owners", OPS, min(timeit.repeat(run_rank, number=1, repeat=REPEATS)))
    case(f"RankIndex kth(rank), {N:,} owners", OPS, min(timeit.repeat(run_kth, number=1, repeat=REPEATS)))
    case(f"RankIndex top(100), {N:,} owners", 1000, min(timeit.repeat(run_top, number=1, repeat=REPEATS)))


def events(rng: random.Random, count: int, start: int) -> list[RoundSettled]:
    return [
        RoundSettled(
            f"r{start + i}", f"user-{rng.randrange(N):06}", "n", "fruit", 100, rng.randrange(5000), T0 + 1
        )
        for i in range(count)
    ]


def bench_board_and_tick() -> None:
    rng = random.Random(3)
    for top_n in (10, 100):
        board = Leaderboard(LeaderboardConfig(id="bench", top_n=top_n), now=T0)
        for i in range(N):  # every player has a score
            board.apply(
                RoundSettled(f"seed{i}", f"user-{i:06}", "n", "fruit", 100, rng.randrange(5000), T0 + 1)
            )
        stream = LeaderboardStream(board, rank_budget=1000)
        for i in range(1000):
            stream.subscribe(f"user-{i:06}")
        stream.tick(T0 + 1)
        batches = [events(rng, 10_000, 20 * N + k * 10_000) for k in range(REPEATS)]
        apply_times, tick_times = [], []
        for batch in batches:
            t = time.perf_counter()
            for e in batch:
                board.apply(e)
            apply_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            stream.tick(T0 + 1)
            tick_times.append(time.perf_counter() - t)
        if top_n == 10:
            case(f"Leaderboard.apply (INCR total win), {N:,} players", 10_000, min(apply_times), "events/s")
        print(
            f"{f'tick after 10k updates, top {top_n}, 1,000 subscribers':<58} {min(tick_times) * 1000:>12.2f} ms",
            flush=True,
        )


def main() -> None:
    bench_updates()
    bench_queries()
    bench_board_and_tick()


if __name__ == "__main__":
    main()
