"""Pure casino math: nothing here performs I/O, reads the clock or creates randomness itself.

Callers inject an :class:`games.rng.Rng` (``SystemRng`` in production) and pass ``now``.

* :mod:`games.rng` - RNG interface, OS CSPRNG, unbiased scaling, commit-reveal stream.
* :mod:`games.slots` - slot config, round engine, exact par sheet, Monte-Carlo check.
* :mod:`games.round` - the round/outcome shape shared by every game.
* :mod:`games.ledger`, :mod:`games.wallet` - double-entry postings and wallet rules.
* :mod:`games.policy` - responsible-gaming checks.
* :mod:`games.minigames` - wheel, pick-a-box, scratch cards.
* :mod:`games.lottery` - verifiable draws.
* :mod:`games.bonus`, :mod:`games.missions`, :mod:`games.referral` - promotions.
"""
