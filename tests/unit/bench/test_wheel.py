"""The load generator's timer wheel: nothing runs early, everything runs, in due order."""

from __future__ import annotations

import asyncio

from bench.loadgen.wheel import Wheel


def test_entries_run_after_their_delay_and_in_order() -> None:
    async def main() -> list[tuple[float, float, int]]:
        loop = asyncio.get_running_loop()
        wheel = Wheel(tick=0.01)
        ran: list[tuple[float, float, int]] = []
        t0 = loop.time()

        def fire(delay: float, left: int, epoch: int) -> None:
            ran.append((loop.time() - t0, delay, left))
            if left > 1:  # re-adding from inside a run goes to a later slot
                wheel.add(0.0, fire, delay, left - 1, epoch)

        # a late entry first, then earlier ones: the wheel's timer must move forward
        for delay in (0.2, 0.05, 0.0, 0.12, 0.05):
            wheel.add(delay, fire, delay, 1, 0)
        wheel.add(0.03, fire, 0.03, 3, 0)
        while wheel.pending:
            await asyncio.sleep(0.01)
        return ran

    ran = asyncio.run(main())
    assert len(ran) == 8
    assert all(at >= delay for at, delay, _ in ran)
    assert [d for _, d, _left in ran if d != 0.03] == [0.0, 0.05, 0.05, 0.12, 0.2]
    assert all(at < delay + 0.1 for at, delay, left in ran if left == 1 and delay != 0.03)
    chain = [at for at, d, _ in ran if d == 0.03]
    assert len(chain) == 3 and chain == sorted(chain) and len(set(chain)) == 3


def test_clear_forgets_everything() -> None:
    async def main() -> int:
        wheel = Wheel()
        ran: list[int] = []
        wheel.add(0.01, lambda a, left, e: ran.append(a), 1, 1, 0)
        wheel.clear()
        await asyncio.sleep(0.05)
        return len(ran) + wheel.pending

    assert asyncio.run(main()) == 0
