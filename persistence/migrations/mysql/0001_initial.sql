-- Croupier schema v1 (MySQL / MariaDB, InnoDB, utf8mb4 with binary collation:
-- ids and idempotency keys compare byte for byte, "A" and "a" are different keys).
-- Times are BIGINT epoch milliseconds; money is BIGINT minor units.

-- migrate:up
CREATE TABLE accounts (
  user_id     VARCHAR(64)  NOT NULL,
  zone        VARCHAR(64)  NOT NULL,
  name        VARCHAR(128) NOT NULL,
  partner_id  VARCHAR(64)  NOT NULL DEFAULT '',
  status      VARCHAR(16)  NOT NULL DEFAULT 'active',
  profile     MEDIUMBLOB   NOT NULL,
  created_at  BIGINT       NOT NULL,
  updated_at  BIGINT       NOT NULL,
  PRIMARY KEY (user_id),
  UNIQUE KEY ux_accounts_zone_name (zone, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The balance is a view of the ledger, updated in the same transaction (WAL-1).
CREATE TABLE balances (
  account         VARCHAR(64) NOT NULL,
  currency        VARCHAR(64) NOT NULL,
  balance         BIGINT      NOT NULL,
  allow_negative  TINYINT     NOT NULL DEFAULT 0,
  updated_at      BIGINT      NOT NULL,
  PRIMARY KEY (account, currency),
  CONSTRAINT ck_balances_non_negative CHECK (allow_negative = 1 OR balance >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per committed money transaction: the idempotency key is the primary key,
-- and the stored result is what a duplicate gets back (WAL-2).
CREATE TABLE txns (
  txn_key     VARCHAR(128) NOT NULL,
  round_id    VARCHAR(64)  NOT NULL DEFAULT '',
  created_at  BIGINT       NOT NULL,
  result      MEDIUMBLOB   NOT NULL,
  PRIMARY KEY (txn_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Append-only double-entry postings: the entries of one txn sum to zero per currency.
-- ``id`` is the journal order; (txn_key, seq) is unique, so a txn can never post twice.
CREATE TABLE ledger (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  txn_key     VARCHAR(128) NOT NULL,
  seq         SMALLINT     NOT NULL,
  account     VARCHAR(64)  NOT NULL,
  currency    VARCHAR(64)  NOT NULL,
  amount      BIGINT       NOT NULL,
  kind        VARCHAR(16)  NOT NULL,
  round_id    VARCHAR(64)  NOT NULL DEFAULT '',
  created_at  BIGINT       NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_ledger_txn (txn_key, seq),
  KEY ix_ledger_account (account, currency, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Game rounds (HIST-2): written only by money txns; immutable once settled or voided.
CREATE TABLE rounds (
  round_id        VARCHAR(64) NOT NULL,
  user_id         VARCHAR(64) NOT NULL,
  game_id         VARCHAR(64) NOT NULL,
  game_version    VARCHAR(64) NOT NULL DEFAULT '',
  math_version    VARCHAR(64) NOT NULL DEFAULT '',
  currency        VARCHAR(64) NOT NULL DEFAULT '',
  bet             BIGINT      NOT NULL,
  win             BIGINT      NOT NULL,
  status          VARCHAR(16) NOT NULL,
  state           MEDIUMBLOB  NOT NULL,
  balance_before  BIGINT      NOT NULL,
  balance_after   BIGINT      NOT NULL,
  session_id      VARCHAR(64) NOT NULL DEFAULT '',
  partner_id      VARCHAR(64) NOT NULL DEFAULT '',
  created_at      BIGINT      NOT NULL,
  updated_at      BIGINT      NOT NULL,
  settled_at      BIGINT      NOT NULL,
  PRIMARY KEY (round_id),
  KEY ix_rounds_user_created (user_id, created_at),
  KEY ix_rounds_user_status (user_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE variables (
  scope       VARCHAR(8)  NOT NULL,
  owner       VARCHAR(64) NOT NULL,
  name        VARCHAR(64) NOT NULL,
  value       MEDIUMBLOB  NOT NULL,
  updated_at  BIGINT      NOT NULL,
  PRIMARY KEY (scope, owner, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE leaderboard_records (
  board_id    VARCHAR(64) NOT NULL,
  period      VARCHAR(32) NOT NULL,
  owner_id    VARCHAR(64) NOT NULL,
  score       BIGINT      NOT NULL,
  subscore    BIGINT      NOT NULL,
  meta        BLOB        NOT NULL,
  updated_at  BIGINT      NOT NULL,
  PRIMARY KEY (board_id, period, owner_id),
  KEY ix_leaderboard_rank (board_id, period, score, subscore)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Versioned configuration documents: a version's body never changes (AUD-2).
CREATE TABLE configs (
  kind        VARCHAR(32) NOT NULL,
  id          VARCHAR(64) NOT NULL,
  version     INT         NOT NULL,
  status      VARCHAR(16) NOT NULL,
  body        MEDIUMBLOB  NOT NULL,
  author      VARCHAR(64) NOT NULL DEFAULT '',
  created_at  BIGINT      NOT NULL,
  PRIMARY KEY (kind, id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE bans (
  zone        VARCHAR(64)  NOT NULL,
  kind        VARCHAR(16)  NOT NULL,
  value       VARCHAR(255) NOT NULL,
  until       BIGINT       NOT NULL,
  reason      VARCHAR(255) NOT NULL DEFAULT '',
  created_by  VARCHAR(64)  NOT NULL DEFAULT '',
  created_at  BIGINT       NOT NULL,
  PRIMARY KEY (zone, kind, value)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Append-only audit log with a hash chain (AUD-1).
CREATE TABLE audit_log (
  seq         BIGINT       NOT NULL,
  at          BIGINT       NOT NULL,
  actor       VARCHAR(64)  NOT NULL,
  action      VARCHAR(64)  NOT NULL,
  target      VARCHAR(255) NOT NULL DEFAULT '',
  before_value MEDIUMBLOB   NOT NULL,
  after_value  MEDIUMBLOB   NOT NULL,
  reason      VARCHAR(255) NOT NULL DEFAULT '',
  request_id  VARCHAR(128) NOT NULL DEFAULT '',
  prev_hash   CHAR(64)     NOT NULL,
  hash        CHAR(64)     NOT NULL,
  PRIMARY KEY (seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Generic versioned documents, one table per aggregate.
CREATE TABLE lotteries (
  id VARCHAR(128) NOT NULL, owner VARCHAR(64) NOT NULL DEFAULT '', status VARCHAR(32) NOT NULL DEFAULT '',
  version INT NOT NULL, body MEDIUMBLOB NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (id), KEY ix_lotteries_owner (owner, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE bonuses (
  id VARCHAR(128) NOT NULL, owner VARCHAR(64) NOT NULL DEFAULT '', status VARCHAR(32) NOT NULL DEFAULT '',
  version INT NOT NULL, body MEDIUMBLOB NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (id), KEY ix_bonuses_owner (owner, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE missions (
  id VARCHAR(128) NOT NULL, owner VARCHAR(64) NOT NULL DEFAULT '', status VARCHAR(32) NOT NULL DEFAULT '',
  version INT NOT NULL, body MEDIUMBLOB NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (id), KEY ix_missions_owner (owner, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE referrals (
  id VARCHAR(128) NOT NULL, owner VARCHAR(64) NOT NULL DEFAULT '', status VARCHAR(32) NOT NULL DEFAULT '',
  version INT NOT NULL, body MEDIUMBLOB NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (id), KEY ix_referrals_owner (owner, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
