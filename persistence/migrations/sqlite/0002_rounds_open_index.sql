-- Open rounds of a game, of every player, by last write (INT-4: the scheduler finishes
-- abandoned pick rounds, also of players who never log in again). Settled rounds are most
-- of the table; the index's `open` range holds only the rounds in progress, and the game
-- comes before the time so that open rounds of other games (free spins never revealed) are
-- not read. A partial index: settled rounds (every spin) add nothing to it.

-- migrate:up
CREATE INDEX ix_rounds_open_game ON rounds (status, game_id, updated_at) WHERE status = 'open';

-- migrate:down
DROP INDEX ix_rounds_open_game;
