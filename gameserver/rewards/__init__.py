"""Rewards on a player's session: lotteries, bonuses, missions, referrals and the player's
responsible-gaming settings (docs/casino.md; wire format in docs/protocol.md, "Casino").

`Rewards` is a hub service (gameserver/services.py) beside the casino: it reuses the
casino's zones, wallets and accounts, moves money only through `stores.commit` under
idempotency keys, keeps its state in the store's document tables, and consumes the
`RoundSettled` events the casino publishes.
"""

from __future__ import annotations

from .service import REWARDS_TYPES, Rewards

__all__ = ["REWARDS_TYPES", "Rewards"]
