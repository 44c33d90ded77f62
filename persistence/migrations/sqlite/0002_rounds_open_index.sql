-- Open rounds of every player by last write (INT-4: the scheduler finishes abandoned pick
-- rounds, also of players who never log in again). Settled rounds are most of the table;
-- the index's `open` range holds only the rounds still in progress.

-- migrate:up
CREATE INDEX ix_rounds_status_updated ON rounds (status, updated_at);

-- migrate:down
DROP INDEX ix_rounds_status_updated;
