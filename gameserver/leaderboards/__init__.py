"""Real-time leaderboards and tournaments wired to the server (docs/leaderboards.md).

`Leaderboards` is the service (requests, tick driver, settled-round consumer, prizes);
`Ownership` decides where scores and events go; `BoardStore` keeps durable state.
"""

from .owner import Ownership
from .service import Board, Leaderboards
from .store import BoardStore, FinalRow
from .tournament import prize_key, rank_rows, settle

__all__ = ["Board", "BoardStore", "FinalRow", "Leaderboards", "Ownership", "prize_key", "rank_rows", "settle"]
