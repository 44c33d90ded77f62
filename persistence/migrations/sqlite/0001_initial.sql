-- Croupier schema v1 (SQLite; STRICT tables so a wrong type is an error, as in MySQL strict mode).
-- Times are INTEGER epoch milliseconds; money is INTEGER minor units.

-- migrate:up
CREATE TABLE accounts (
  user_id         TEXT    NOT NULL,
  zone            TEXT    NOT NULL,
  name            TEXT    NOT NULL,
  partner_id      TEXT    NOT NULL DEFAULT '',
  status          TEXT    NOT NULL DEFAULT 'active',
  profile         BLOB    NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (user_id)
) STRICT;
CREATE UNIQUE INDEX ux_accounts_zone_name ON accounts (zone, name);

-- The balance is a view of the ledger, updated in the same transaction (WAL-1).
CREATE TABLE balances (
  account         TEXT    NOT NULL,
  currency        TEXT    NOT NULL,
  balance         INTEGER NOT NULL,
  allow_negative  INTEGER NOT NULL DEFAULT 0,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (account, currency),
  CONSTRAINT ck_balances_non_negative CHECK (allow_negative = 1 OR balance >= 0)
) STRICT;

-- One row per committed money transaction: the idempotency key is the primary key,
-- and the stored result is what a duplicate gets back (WAL-2).
CREATE TABLE txns (
  txn_key         TEXT    NOT NULL,
  round_id        TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  result          BLOB    NOT NULL,
  PRIMARY KEY (txn_key)
) STRICT;

-- Append-only double-entry postings: the entries of one txn sum to zero per currency.
-- ``id`` is the journal order; (txn_key, seq) is unique, so a txn can never post twice.
CREATE TABLE ledger (
  id              INTEGER PRIMARY KEY,
  txn_key         TEXT    NOT NULL,
  seq             INTEGER NOT NULL,
  account         TEXT    NOT NULL,
  currency        TEXT    NOT NULL,
  amount          INTEGER NOT NULL,
  kind            TEXT    NOT NULL,
  round_id        TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX ux_ledger_txn ON ledger (txn_key, seq);
CREATE INDEX ix_ledger_account ON ledger (account, currency, id);

-- Game rounds (HIST-2): written only by money txns; immutable once settled or voided.
CREATE TABLE rounds (
  round_id        TEXT    NOT NULL,
  user_id         TEXT    NOT NULL,
  game_id         TEXT    NOT NULL,
  game_version    TEXT    NOT NULL DEFAULT '',
  math_version    TEXT    NOT NULL DEFAULT '',
  currency        TEXT    NOT NULL DEFAULT '',
  bet             INTEGER NOT NULL,
  win             INTEGER NOT NULL,
  status          TEXT    NOT NULL,
  state           BLOB    NOT NULL,
  balance_before  INTEGER NOT NULL,
  balance_after   INTEGER NOT NULL,
  session_id      TEXT    NOT NULL DEFAULT '',
  partner_id      TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  settled_at      INTEGER NOT NULL,
  PRIMARY KEY (round_id)
) STRICT;
CREATE INDEX ix_rounds_user_created ON rounds (user_id, created_at);
CREATE INDEX ix_rounds_user_status ON rounds (user_id, status);

CREATE TABLE variables (
  scope           TEXT    NOT NULL,
  owner           TEXT    NOT NULL,
  name            TEXT    NOT NULL,
  value           BLOB    NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (scope, owner, name)
) STRICT;

CREATE TABLE leaderboard_records (
  board_id        TEXT    NOT NULL,
  period          TEXT    NOT NULL,
  owner_id        TEXT    NOT NULL,
  score           INTEGER NOT NULL,
  subscore        INTEGER NOT NULL,
  meta            BLOB    NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (board_id, period, owner_id)
) STRICT;
CREATE INDEX ix_leaderboard_rank ON leaderboard_records (board_id, period, score, subscore);

-- Versioned configuration documents: a version's body never changes (AUD-2).
CREATE TABLE configs (
  kind            TEXT    NOT NULL,
  id              TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  status          TEXT    NOT NULL,
  body            BLOB    NOT NULL,
  author          TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (kind, id, version)
) STRICT;

CREATE TABLE bans (
  zone            TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  value           TEXT    NOT NULL,
  until           INTEGER NOT NULL,
  reason          TEXT    NOT NULL DEFAULT '',
  created_by      TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (zone, kind, value)
) STRICT;

-- Append-only audit log with a hash chain (AUD-1).
CREATE TABLE audit_log (
  seq             INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  actor           TEXT    NOT NULL,
  action          TEXT    NOT NULL,
  target          TEXT    NOT NULL DEFAULT '',
  before_value    BLOB    NOT NULL,
  after_value     BLOB    NOT NULL,
  reason          TEXT    NOT NULL DEFAULT '',
  request_id      TEXT    NOT NULL DEFAULT '',
  prev_hash       TEXT    NOT NULL,
  hash            TEXT    NOT NULL,
  PRIMARY KEY (seq)
) STRICT;

-- Generic versioned documents, one table per aggregate.
CREATE TABLE lotteries (
  id TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (id)
) STRICT;
CREATE INDEX ix_lotteries_owner ON lotteries (owner, status);

CREATE TABLE bonuses (
  id TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (id)
) STRICT;
CREATE INDEX ix_bonuses_owner ON bonuses (owner, status);

CREATE TABLE missions (
  id TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (id)
) STRICT;
CREATE INDEX ix_missions_owner ON missions (owner, status);

CREATE TABLE referrals (
  id TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (id)
) STRICT;
CREATE INDEX ix_referrals_owner ON referrals (owner, status);

-- migrate:down
DROP TABLE referrals;
DROP TABLE missions;
DROP TABLE bonuses;
DROP TABLE lotteries;
DROP TABLE audit_log;
DROP TABLE bans;
DROP TABLE configs;
DROP TABLE leaderboard_records;
DROP TABLE variables;
DROP TABLE rounds;
DROP TABLE ledger;
DROP TABLE txns;
DROP TABLE balances;
DROP TABLE accounts;
