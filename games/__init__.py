"""Pure casino math: RNG interface, slot engine and exact RTP, mini-games, lotteries, ledger rules.

Nothing in this package performs I/O, reads the clock or creates randomness on its own: callers
inject an :class:`games.rng.Rng` and pass ``now`` explicitly.
"""
