"""Exact par sheet of a slot round: RTP, hit frequencies, variance, contributions (OUT-2).

Every figure is a :class:`fractions.Fraction` over the full game cycle. A round is a base spin
plus, when triggered, a chain of free spins. The chain is a branching process (each free spin pays
``X`` and awards ``A`` more spins, independently of the others), so its moments have closed forms
when retriggers are unlimited, and a finite Markov chain is solved when ``max_spins`` caps them:

* ``E[S] = E[X] / (1 - E[A])`` per awarded spin (``a / (1 - a p)`` expected spins for a constant
  award ``a`` and retrigger probability ``p``);
* ``E[S^2] (1 - E[A]) = E[X^2] + 2 E[S] E[XA] + E[S]^2 E[A(A - 1)]``.

Hit frequencies need ``P(free total < d)`` for small ``d``; that recursion is finite unless a
free spin can retrigger while paying nothing with unlimited retriggers, in which case the round
hit frequencies are reported as ``None``. A max-win cap is applied exactly when the round
distribution is finite (no features, or a cap that can never bind); otherwise the uncapped RTP is
reported with an exact upper bound on what the cap removes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from .contrib import SCATTER_SUFFIX, spin_contributions
from .distribution import SpinDistribution, spin_distribution
from .model import SlotGame

__all__ = ["FreeChain", "SlotReport", "exact_report"]


class FreeChain:
    """Moments and small-value probabilities of the free-spin total (coins, multiplied).

    Args:
        outcomes: ``{(coins, awarded): weight}`` for one free spin.
        cycle: Sum of the weights.
        max_spins: Cap on the spins of one round, or None.
    """

    def __init__(self, outcomes: dict[tuple[int, int], int], cycle: int, max_spins: int | None) -> None:
        self.outcomes = outcomes
        self.cycle = cycle
        self.max_spins = max_spins
        self.p_award = sum((Fraction(k * w, cycle) for (_, k), w in outcomes.items()), Fraction(0))
        if max_spins is None and self.p_award >= 1:
            raise ValueError("free spins retrigger at least once per spin on average: infinite RTP")
        self._classes = self._by_award()
        self._below: dict[tuple[int, int, int], Fraction] = {}
        if max_spins is None:
            self._closed_form()
        else:
            self._solve_capped(max_spins)

    def _by_award(self) -> dict[int, tuple[Fraction, Fraction, Fraction]]:
        """award -> (P, E[X; A=k], E[X^2; A=k])."""
        acc: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (x, k), w in self.outcomes.items():
            acc[k][0] += w
            acc[k][1] += x * w
            acc[k][2] += x * x * w
        return {
            k: (Fraction(p, self.cycle), Fraction(s, self.cycle), Fraction(q, self.cycle))
            for k, (p, s, q) in acc.items()
        }

    def _closed_form(self) -> None:
        classes = self._classes
        ex = sum((c[1] for c in classes.values()), Fraction(0))
        ex2 = sum((c[2] for c in classes.values()), Fraction(0))
        exa = sum((k * c[1] for k, c in classes.items()), Fraction(0))
        eaa = sum((k * (k - 1) * c[0] for k, c in classes.items()), Fraction(0))
        self._mu: Fraction = ex / (1 - self.p_award)
        self._s2: Fraction = (ex2 + 2 * self._mu * exa + self._mu**2 * eaa) / (1 - self.p_award)

    def _solve_capped(self, cap: int) -> None:
        # state (remaining r, awarded t); every spin moves played = t - r up by one, so solve by
        # decreasing played count. Values: (E[total], E[total^2], E[spins]).
        self._table: dict[tuple[int, int], tuple[Fraction, Fraction, Fraction]] = {}
        zero = (Fraction(0), Fraction(0), Fraction(0))
        for played in range(cap - 1, -1, -1):
            for r in range(1, cap - played + 1):
                t = r + played
                m1 = m2 = n = Fraction(0)
                for k, (p, sx, sxx) in self._classes.items():
                    add = min(k, cap - t)
                    nxt = self._table.get((r - 1 + add, t + add), zero) if r - 1 + add else zero
                    m1 += sx + p * nxt[0]
                    m2 += sxx + 2 * sx * nxt[0] + p * nxt[1]
                    n += p * (1 + nxt[2])
                self._table[(r, t)] = (m1, m2, n)

    def mean(self, awarded: int) -> Fraction:
        """E[total of a chain that starts with ``awarded`` spins]."""
        if not awarded:
            return Fraction(0)
        if self.max_spins is None:
            return awarded * self._mu
        return self._table[(awarded, awarded)][0]

    def second_moment(self, awarded: int) -> Fraction:
        """E[total^2] of a chain that starts with ``awarded`` spins."""
        if not awarded:
            return Fraction(0)
        if self.max_spins is None:
            return awarded * self._s2 + awarded * (awarded - 1) * self._mu**2
        return self._table[(awarded, awarded)][1]

    def spins(self, awarded: int) -> Fraction:
        """Expected number of free spins played, retriggers included."""
        if not awarded:
            return Fraction(0)
        if self.max_spins is None:
            return Fraction(awarded) / (1 - self.p_award)
        return self._table[(awarded, awarded)][2]

    def below(self, awarded: int, limit: int) -> Fraction | None:
        """P(total < limit) for a chain starting with ``awarded`` spins; None if not finite."""
        if self.max_spins is None and any(x == 0 and k > 0 for (x, k) in self.outcomes):
            return None
        small = [(x, k, Fraction(w, self.cycle)) for (x, k), w in self.outcomes.items() if x < limit]
        try:
            return self._below_from(awarded, awarded, limit, small)
        except RecursionError:  # pragma: no cover - pathological chains only
            return None

    def _below_from(self, r: int, t: int, d: int, small: list[tuple[int, int, Fraction]]) -> Fraction:
        if d <= 0:
            return Fraction(0)
        if r == 0:
            return Fraction(1)
        key = (r, t if self.max_spins is not None else 0, d)
        hit = self._below.get(key)
        if hit is not None:
            return hit
        total = Fraction(0)
        for x, k, p in small:
            if x < d:
                add = k if self.max_spins is None else min(k, self.max_spins - t)
                total += p * self._below_from(r - 1 + add, t + add, d - x, small)
        self._below[key] = total
        return total


@dataclass(frozen=True, slots=True)
class SlotReport:
    """Exact figures for one game, profile and line count. Ratios are per unit of stake.

    Attributes:
        rtp: Return to player of a round (capped when ``rtp_is_exact``; see ``cap_loss_bound``).
        rtp_is_exact: False when a max-win cap might bind inside an unbounded feature chain; then
            ``rtp`` is uncapped and the true value lies in ``[rtp - cap_loss_bound, rtp]``.
        base_rtp: Return of the base spin alone (line and scatter pays).
        feature_rtp: Return of the free-spin feature (``rtp = base_rtp + feature_rtp`` uncapped).
        hit_frequency: P(round win > 0); None when not finitely computable.
        hit_frequency_stake: P(round win >= stake); None when not finitely computable.
        base_hit_frequency: P(base spin win > 0).
        base_hit_frequency_stake: P(base spin win >= stake).
        variance: Variance of the round win, in stakes squared.
        trigger_probability: P(a round triggers free spins).
        expected_free_spins: Expected free spins per triggered round, retriggers included.
        contributions: Expected return of each pay, e.g. ``"base Steak x5"`` or ``"free Scale x3"``.
        top_award_probability: P(the largest base-spin win) per round (OUT-4).
        max_base_multiple: Largest base-spin win in stakes.
    """

    game_id: str
    profile: str
    math_hash: str
    lines: int
    cycle: int
    rtp: Fraction
    rtp_is_exact: bool
    cap_loss_bound: Fraction | None
    base_rtp: Fraction
    feature_rtp: Fraction
    hit_frequency: Fraction | None
    hit_frequency_stake: Fraction | None
    base_hit_frequency: Fraction
    base_hit_frequency_stake: Fraction
    variance: Fraction
    trigger_probability: Fraction
    expected_free_spins: Fraction
    contributions: dict[str, Fraction]
    top_award_probability: Fraction
    max_base_multiple: Fraction

    @property
    def sigma(self) -> float:
        """Standard deviation of the round win, in stakes."""
        return math.sqrt(self.variance)

    def volatility_index(self, z: float = 1.645) -> float:
        """Volatility index ``z * sigma`` (1.645 = 90%, the IGT convention; 1.96 = 95%)."""
        return z * self.sigma


def exact_report(game: SlotGame, lines: int | None = None) -> SlotReport:
    """Compute the exact par sheet of a compiled game.

    Args:
        game: The compiled game (one RTP profile).
        lines: Lines played; defaults to all.

    Raises:
        ValueError: If the free-spin chain has infinite expectation.
    """
    lines = len(game.paylines) if lines is None else lines
    cost = game.cost(lines)
    base = spin_distribution(game, game.base, lines)
    awards = {c: _award(game, c) for (_, c) in base.weights}
    chain = _free_chain(game, lines) if any(awards.values()) else None
    moments = _round_moments(base, awards, chain, game.max_win * cost if game.max_win else None)
    contributions, feature = _contributions(game, lines, base, awards, chain)
    hits = [_round_hit(base, awards, chain, threshold) for threshold in (1, cost)]
    top = max(coins for coins, _ in base.weights)
    triggered = sum(w for (_, c), w in base.weights.items() if awards[c])
    return SlotReport(
        game_id=game.config.id,
        profile=game.profile,
        math_hash=game.math_hash,
        lines=lines,
        cycle=base.cycle,
        rtp=moments[0] / cost,
        rtp_is_exact=moments[2] is None,
        cap_loss_bound=None if moments[2] is None else moments[2] / cost,
        base_rtp=sum((v for k, v in contributions.items() if k.startswith("base ")), Fraction(0)),
        feature_rtp=feature,
        hit_frequency=hits[0],
        hit_frequency_stake=hits[1],
        base_hit_frequency=_spin_hit(base, 1),
        base_hit_frequency_stake=_spin_hit(base, cost),
        variance=(moments[1] - moments[0] ** 2) / cost**2,
        trigger_probability=Fraction(triggered, base.cycle),
        expected_free_spins=(
            Fraction(0)
            if chain is None or not triggered
            else sum((chain.spins(awards[c]) * w for (_, c), w in base.weights.items()), Fraction(0))
            / triggered
        ),
        contributions=contributions,
        top_award_probability=Fraction(sum(w for (x, _), w in base.weights.items() if x == top), base.cycle),
        max_base_multiple=Fraction(top, cost),
    )


def _award(game: SlotGame, count: int) -> int:
    if not game.has_free_spins:
        return 0
    award = game.awards[count]
    return award if game.max_spins is None else min(award, game.max_spins)


def _free_chain(game: SlotGame, lines: int) -> FreeChain:
    dist = spin_distribution(game, game.free, lines, game.fs_multiplier, game.fs_scatter_multiplier)
    outcomes: defaultdict[tuple[int, int], int] = defaultdict(int)
    for (coins, count), w in dist.weights.items():
        outcomes[(coins, game.reawards[count])] += w
    return FreeChain(dict(outcomes), dist.cycle, game.max_spins)


def _round_moments(
    base: SpinDistribution, awards: dict[int, int], chain: FreeChain | None, cap: int | None
) -> tuple[Fraction, Fraction, Fraction | None]:
    """(E[T], E[T^2], bound on E[(T - cap)+] or None when exact) in coins."""
    if chain is None:
        if cap is None:
            cap = max(x for x, _ in base.weights)
        m1 = sum((Fraction(min(x, cap) * w) for (x, _), w in base.weights.items()), Fraction(0))
        m2 = sum((Fraction(min(x, cap) ** 2 * w) for (x, _), w in base.weights.items()), Fraction(0))
        return m1 / base.cycle, m2 / base.cycle, None
    m1 = m2 = Fraction(0)
    for (x, c), w in base.weights.items():
        a = awards[c]
        mean = chain.mean(a)
        m1 += w * (x + mean)
        m2 += w * (x * x + 2 * x * mean + chain.second_moment(a))
    m1, m2 = m1 / base.cycle, m2 / base.cycle
    if cap is None or _max_round(base, awards, chain) <= cap:
        return m1, m2, None
    # (T - C)+ <= T^2 / (4 C) because (T - 2C)^2 >= 0.
    return m1, m2, m2 / (4 * cap)


def _max_round(base: SpinDistribution, awards: dict[int, int], chain: FreeChain) -> float:
    top_free = max(x for x, _ in chain.outcomes)
    if chain.max_spins is not None:
        spins = chain.max_spins
    elif chain.p_award == 0:
        spins = max(awards.values())
    else:
        return math.inf
    return max(x for x, _ in base.weights) + spins * top_free


def _spin_hit(dist: SpinDistribution, threshold: int) -> Fraction:
    return Fraction(sum(w for (x, _), w in dist.weights.items() if x >= threshold), dist.cycle)


def _round_hit(
    base: SpinDistribution, awards: dict[int, int], chain: FreeChain | None, threshold: int
) -> Fraction | None:
    """P(round win >= threshold coins)."""
    total = Fraction(0)
    for (x, c), w in base.weights.items():
        if x >= threshold:
            total += w
        elif awards[c] and chain is not None:
            below = chain.below(awards[c], threshold - x)
            if below is None:
                return None
            total += w * (1 - below)
    return total / base.cycle


def _contributions(
    game: SlotGame,
    lines: int,
    base: SpinDistribution,
    awards: dict[int, int],
    chain: FreeChain | None,
) -> tuple[dict[str, Fraction], Fraction]:
    cost = game.cost(lines)
    out = {
        f"base {k} x{n}": v / cost for (k, n), v in sorted(spin_contributions(game, game.base, lines).items())
    }
    if chain is None:
        return out, Fraction(0)
    spins = sum((chain.spins(awards[c]) * w for (_, c), w in base.weights.items()), Fraction(0)) / base.cycle
    free = spin_contributions(game, game.free, lines)
    feature = Fraction(0)
    for (k, n), v in sorted(free.items()):
        mult = game.fs_scatter_multiplier if k.endswith(SCATTER_SUFFIX) else game.fs_multiplier
        out[f"free {k} x{n}"] = v * spins * mult / cost
        feature += out[f"free {k} x{n}"]
    return out, feature
