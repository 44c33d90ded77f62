"""The load runs' process sampler."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from bench.loadgen.servers import Sampler, _CpuMeter, _WaitMeter, lower_priority, run_delay_ns


def test_the_cpu_meter_does_not_read_a_clock_tick_over_a_few_ms_as_1000_percent():
    """Two samples 5 ms apart: the figure stays the one of the last long-enough interval."""
    meter = _CpuMeter(min_interval=0.2)
    me = psutil.Process(os.getpid())
    assert meter.read(me) == 0.0  # the baseline
    end = time.monotonic() + 0.25
    while time.monotonic() < end:  # busy: about 100% of a core
        pass
    busy = meter.read(me)
    assert 50.0 < busy <= 130.0
    time.sleep(0.005)
    assert meter.read(me) == busy  # not renewed from a 5 ms window


def test_a_sample_splits_out_the_cpu_no_process_is_charged_for() -> None:
    """Interrupt/softirq and stolen time are sampled (% of all CPUs) next to the machine's."""
    sampler = Sampler(None, [])
    sum(i * i for i in range(200_000))  # some time to measure
    s = sampler.sample()
    for key in ("machine_cpu", "machine_irq", "machine_steal"):
        assert isinstance(s[key], float) and 0.0 <= s[key] <= 100.0, (key, s[key])
    assert s["machine_irq"] + s["machine_steal"] <= s["machine_cpu"] + 1.0


_SCHEDSTAT = os.path.exists("/proc/self/schedstat")


def _busy_child(cpu: int) -> subprocess.Popen[bytes]:
    """A child process that spins on CPU `cpu` for at most 10 s (ended by PID by the caller)."""
    code = (
        f"import os, time; os.sched_setaffinity(0, {{{cpu}}}); end = time.monotonic() + 10\n"
        "while time.monotonic() < end: pass"
    )
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.mark.skipif(not _SCHEDSTAT, reason="the kernel has no /proc/PID/schedstat")
def test_the_wait_meter_sees_two_spinning_processes_take_turns_on_one_cpu() -> None:
    """Two processes pinned to one CPU each wait about half the time; a sleeper does not."""
    cpu = min(os.sched_getaffinity(0))
    hogs = [_busy_child(cpu), _busy_child(cpu)]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10)"])
    try:
        time.sleep(0.3)  # both spinning
        meter = _WaitMeter(min_interval=0.5)
        pids = [p.pid for p in [*hogs, sleeper]]
        assert [meter.read(pid) for pid in pids] == [0.0, 0.0, 0.0]  # the baselines
        time.sleep(1.0)
        hog_a, hog_b, slept = (meter.read(pid) for pid in pids)
        assert hog_a is not None and hog_b is not None and slept is not None
        # each is runnable all the time and runs about half of it: ~500 ms per second waiting
        assert hog_a > 250.0 and hog_b > 250.0, (hog_a, hog_b)
        assert slept < 50.0, slept
    finally:
        for p in [*hogs, sleeper]:
            p.kill()
            p.wait(5)
    assert run_delay_ns(hogs[0].pid) is None  # gone: nothing to read


def test_lower_priority_sets_the_process_and_its_autogroup() -> None:
    """A server in a session of its own is niced at both levels (autogroup: where the kernel has it)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10)"], start_new_session=True)
    try:
        lower_priority(child.pid, 3)
        assert psutil.Process(child.pid).nice() == 3
        group = f"/proc/{child.pid}/autogroup"
        if os.path.exists(group):
            with open(group) as f:
                assert f.read().split()[-1] == "3", "the group's niceness"
    finally:
        child.kill()
        child.wait(5)


@pytest.mark.skipif(not _SCHEDSTAT, reason="the kernel has no /proc/PID/schedstat")
def test_a_process_sample_carries_its_wait_for_a_cpu() -> None:
    sampler = Sampler(None, [os.getpid()])
    time.sleep(0.55)
    (me,) = sampler.sample()["workers"]
    assert me is not None and isinstance(me["wait"], float) and 0.0 <= me["wait"] <= 1000.0
