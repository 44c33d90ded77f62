"""Real-time leaderboards, the pure core: rank index, boards with periods, delta streams.

No I/O and no clock: every time is an injected ``now`` in epoch seconds.
"""
