"""The load runs' process sampler."""

from __future__ import annotations

import os
import time

import psutil

from bench.loadgen.servers import Sampler, _CpuMeter


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
