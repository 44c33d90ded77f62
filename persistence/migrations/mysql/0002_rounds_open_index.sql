-- Open rounds of a game, of every player, by last write (INT-4: the scheduler finishes
-- abandoned pick rounds, also of players who never log in again). Settled rounds are most
-- of the table; the index's `open` range holds only the rounds in progress, and the game
-- comes before the time so that open rounds of other games (free spins never revealed) are
-- not read. Built online: InnoDB keeps taking writes while it builds (a rolling deploy
-- does not stop for it).

-- migrate:up
ALTER TABLE rounds ADD INDEX ix_rounds_open_game (status, game_id, updated_at), ALGORITHM=INPLACE, LOCK=NONE;

-- migrate:down
ALTER TABLE rounds DROP INDEX ix_rounds_open_game;
