"""RNG tests: unbiased scaling, statistical quality at 99%, isolation of the seeded generator."""

from __future__ import annotations

import ast
import inspect
import itertools
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from games.rng import (
    Rng,
    RngUnavailable,
    SeededRng,
    SystemRng,
    randbelow_from_bits,
    sample_indices,
    shuffle,
    weighted_index,
)

from .stats import (
    chi2_sf,
    chi2_uniform_pvalue,
    runs_test_pvalue,
    serial_correlation_pvalue,
)

GAMES_DIR = Path(__file__).resolve().parents[3] / "games"
ALPHA = 0.01  # 99% confidence (RNG-3, RNG-4)
RANGES = (3, 7, 10, 37, 1000)


def _counts(rng: Rng, n: int, draws: int) -> list[int]:
    counts = [0] * n
    randbelow = rng.randbelow
    for _ in range(draws):
        counts[randbelow(n)] += 1
    return counts


def _passes_twice_at_99(check: Callable[[], float]) -> bool:
    """Pass at 99% on the first sample or on one independent re-sample (false alarm 1e-4).

    Used only for the non-deterministic OS source; the seeded source is tested at plain 99%.
    """
    return check() > ALPHA or check() > ALPHA


class FakeBits:
    """A raw source that replays a fixed list of values and records the widths requested."""

    def __init__(self, values: list[int]) -> None:
        self._values: Iterator[int] = iter(values)
        self.widths: list[int] = []

    def __call__(self, k: int) -> int:
        self.widths.append(k)
        return next(self._values)


def test_chi2_helper_matches_closed_forms() -> None:
    """The chi-square helper agrees with exp(-x/2) (df=2) and the 1-df 99% critical value."""
    for x in (0.5, 3.0, 9.21, 20.0):
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-9)
    assert chi2_sf(6.634897, 1) == pytest.approx(0.01, rel=1e-5)
    assert chi2_sf(1066.6, 999) == pytest.approx(0.0653, abs=5e-3)


def test_rejection_discards_values_in_the_biased_zone() -> None:
    """Raw values >= n are rejected and the next in-range value is returned (RNG-3 i)."""
    fake = FakeBits([3, 3, 2])
    assert randbelow_from_bits(fake, 3) == 2
    assert fake.widths == [2, 2, 2]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10**12), data=st.data())
def test_rejection_returns_first_raw_value_below_n(n: int, data: st.DataObject) -> None:
    """For any raw stream, the result is the first raw value below n, drawn on bit_length(n-1) bits."""
    k = (n - 1).bit_length()
    rejected = data.draw(st.lists(st.integers(n, 2**k - 1), max_size=5)) if 2**k > n else []
    accepted = data.draw(st.integers(0, n - 1))
    fake = FakeBits([*rejected, accepted])
    assert randbelow_from_bits(fake, n) == accepted
    assert fake.widths == [k] * (len(rejected) + 1)


@pytest.mark.parametrize("n", [0, -5])
def test_randbelow_rejects_empty_ranges(n: int) -> None:
    """An empty range is a programming error, not a silent zero."""
    with pytest.raises(ValueError):
        SeededRng(1).randbelow(n)


@pytest.mark.parametrize("k", [0, 1, 7, 8, 9, 64, 65, 200])
def test_getrandbits_stays_within_width(k: int) -> None:
    """getrandbits(k) never exceeds k bits and uses the top bit for k > 0."""
    rng = SeededRng(k)
    values = [rng.getrandbits(k) for _ in range(400)]
    assert all(0 <= v < 2**k for v in values)
    if k:
        assert max(values) >= 2 ** (k - 1)


@pytest.mark.parametrize("n", RANGES)
def test_seeded_frequency_chi_square_99(n: int) -> None:
    """Seeded draws in [0, n) are uniform by chi-square at 99% confidence (RNG-3 ii)."""
    assert chi2_uniform_pvalue(_counts(SeededRng(f"freq-{n}"), n, 200_000)) > ALPHA


@pytest.mark.parametrize("n", RANGES)
def test_system_frequency_chi_square_99(n: int) -> None:
    """OS-entropy draws in [0, n) are uniform by chi-square at 99% confidence (RNG-3 ii)."""
    rng = SystemRng()
    assert _passes_twice_at_99(lambda: chi2_uniform_pvalue(_counts(rng, n, 100_000)))


@pytest.mark.slow
@pytest.mark.parametrize("n", RANGES)
def test_million_draw_chi_square_99(n: int) -> None:
    """10^6 draws per range pass chi-square at 99% for both generators (RNG-3 ii, full size)."""
    assert chi2_uniform_pvalue(_counts(SeededRng(f"million-{n}"), n, 1_000_000)) > ALPHA
    system = SystemRng()
    assert _passes_twice_at_99(lambda: chi2_uniform_pvalue(_counts(system, n, 1_000_000)))


def test_runs_and_serial_correlation_99() -> None:
    """Scaled values pass the runs test and the lag-1 serial-correlation test at 99% (RNG-4)."""
    seeded = SeededRng("runs")
    values = [seeded.randbelow(37) for _ in range(200_000)]
    assert runs_test_pvalue(values) > ALPHA
    assert serial_correlation_pvalue(values) > ALPHA
    system = SystemRng()

    def draw() -> list[int]:
        return [system.randbelow(37) for _ in range(100_000)]

    assert _passes_twice_at_99(lambda: runs_test_pvalue(draw()))
    assert _passes_twice_at_99(lambda: serial_correlation_pvalue(draw()))


def test_three_of_ten_combinations_uniform_99() -> None:
    """Each of the C(10,3) = 120 combinations is equally likely at 99% (RNG-4, LOT-1)."""
    rng = SeededRng("combos")
    index: dict[tuple[int, ...], int] = {c: i for i, c in enumerate(itertools.combinations(range(10), 3))}
    counts = [0] * len(index)
    for _ in range(120_000):
        counts[index[tuple(sorted(sample_indices(rng, 10, 3)))]] += 1
    assert len(counts) == math.comb(10, 3)
    assert chi2_uniform_pvalue(counts) > ALPHA


def test_shuffle_permutations_uniform_99() -> None:
    """All 24 orders of four items are equally likely after shuffle (Fisher-Yates)."""
    rng = SeededRng("shuffle")
    perms: Counter[tuple[int, ...]] = Counter()
    for _ in range(48_000):
        items = [0, 1, 2, 3]
        shuffle(rng, items)
        perms[tuple(items)] += 1
    assert len(perms) == 24
    assert chi2_uniform_pvalue(list(perms.values())) > ALPHA


def test_weighted_index_matches_weights_99() -> None:
    """weighted_index follows the integer weights (chi-square against expected counts, 99%)."""
    weights = [1, 2, 3, 10, 84]
    cumulative = list(itertools.accumulate(weights))
    rng = SeededRng("weights")
    draws = 100_000
    counts = Counter(weighted_index(rng, cumulative) for _ in range(draws))
    expected = [draws * w / sum(weights) for w in weights]
    statistic = sum((counts[i] - e) ** 2 / e for i, e in enumerate(expected))
    assert chi2_sf(statistic, len(weights) - 1) > ALPHA


def test_sample_indices_validates_size() -> None:
    """k outside [0, population] is rejected; k = population is a full permutation."""
    rng = SeededRng(3)
    with pytest.raises(ValueError):
        sample_indices(rng, 5, 6)
    assert sorted(sample_indices(rng, 5, 5)) == [0, 1, 2, 3, 4]


def test_system_instances_never_share_a_stream() -> None:
    """Two production instances created together give different first 1,000 outputs (RNG-2)."""
    a, b = SystemRng(), SystemRng()
    assert [a.getrandbits(32) for _ in range(1000)] != [b.getrandbits(32) for _ in range(1000)]


def test_production_rng_accepts_no_seed() -> None:
    """SystemRng has no seed parameter, so no production path can replay a stream (RNG-2)."""
    assert list(inspect.signature(SystemRng).parameters) == []
    with pytest.raises(TypeError):
        SystemRng(42)  # type: ignore[call-arg]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_replay_parent_buffer() -> None:
    """A forked child discards the inherited buffer, so parent and child streams differ (RNG-2)."""
    rng = SystemRng()
    rng.getrandbits(8)  # fill the buffer before forking
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        os.write(write_fd, b"".join(rng.getrandbits(64).to_bytes(8, "little") for _ in range(8)))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(rng.getrandbits(64).to_bytes(8, "little") for _ in range(8))
    assert len(child) == 64
    assert child != parent


def test_entropy_failure_raises_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the OS entropy source fails, no number is produced and RngUnavailable is raised (RNG-8)."""

    def broken(_: int) -> bytes:
        raise OSError("no entropy")

    monkeypatch.setattr(os, "urandom", broken)
    with pytest.raises(RngUnavailable):
        SystemRng().randbelow(10)


def test_seeded_rng_is_reproducible() -> None:
    """Equal seeds give equal streams, different seeds different ones (tests and simulation)."""
    a, b = SeededRng("x"), SeededRng("x")
    assert [a.randbelow(10**9) for _ in range(50)] == [b.randbelow(10**9) for _ in range(50)]
    c = SeededRng("y")
    assert [c.randbelow(10**9) for _ in range(50)] != [SeededRng("x").randbelow(10**9) for _ in range(50)]


def _python_sources() -> list[Path]:
    return sorted(GAMES_DIR.rglob("*.py"))


def test_games_never_import_random() -> None:
    """No module under games/ imports the stdlib random module or numpy.random (RNG-1)."""
    offenders = []
    for path in _python_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path}: {n}" for n in names if n == "random" or n.startswith(("random.", "numpy"))
            ]
    assert _python_sources(), "games sources not found"
    assert offenders == []


# Only the RNG module itself and the offline simulator may refer to the seeded generator.
SEEDED_ALLOWED = {"rng.py", "slots/simulate.py"}


def test_seeded_generator_unreachable_from_production_modules() -> None:
    """SeededRng is referenced only by the RNG module and the simulator (RNG-2)."""
    users = {
        path.relative_to(GAMES_DIR).as_posix()
        for path in _python_sources()
        if "SeededRng" in path.read_text()
    }
    assert users <= SEEDED_ALLOWED
