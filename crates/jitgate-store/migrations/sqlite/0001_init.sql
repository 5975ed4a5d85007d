-- jitgate schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql: the two
-- differ only in DDL (identity columns); column names and types as seen by sqlx::Any agree.
-- Timestamps are BIGINT unix milliseconds, booleans BIGINT 0/1, structured values JSON TEXT.

-- The single row every write transaction updates first: the global write lock, and the
-- last seq/hash of the evidence chain.
CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE sites (
    id  TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE orgs (
    id  TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE identities (
    id     TEXT PRIMARY KEY,
    kind   TEXT NOT NULL,
    org    TEXT,
    status TEXT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX identities_org ON identities (org);

CREATE TABLE assets (
    id   TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    doc  TEXT NOT NULL
);
CREATE INDEX assets_site ON assets (site);

CREATE TABLE requests (
    pos           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT   NOT NULL UNIQUE,
    requester     TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    scope         TEXT   NOT NULL,
    scope_digest  TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    duration_secs BIGINT NOT NULL,
    window_end    BIGINT NOT NULL,
    reason        TEXT   NOT NULL,
    reference     TEXT   NOT NULL,
    path          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    decision      TEXT   NOT NULL,
    grant_id      TEXT,
    state_reason  TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX requests_state ON requests (state, window_start, window_end);
CREATE INDEX requests_requester ON requests (requester, created_at);
CREATE INDEX requests_subject ON requests (subject, created_at);
CREATE INDEX requests_created ON requests (created_at);

CREATE TABLE approvals (
    pos          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT   NOT NULL UNIQUE,
    request_id   TEXT   NOT NULL REFERENCES requests (id),
    approver     TEXT   NOT NULL,
    verdict      TEXT   NOT NULL,
    scope_digest TEXT   NOT NULL,
    comment      TEXT   NOT NULL,
    step_up      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    UNIQUE (request_id, approver)
);

CREATE TABLE grants (
    pos             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT   NOT NULL UNIQUE,
    request_id      TEXT   NOT NULL REFERENCES requests (id),
    subject         TEXT   NOT NULL,
    scope           TEXT   NOT NULL,
    scope_digest    TEXT   NOT NULL,
    not_before      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    emergency       BIGINT NOT NULL,
    review_required BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX grants_state ON grants (state, expires_at);
CREATE INDEX grants_subject ON grants (subject, created_at);
CREATE INDEX grants_request ON grants (request_id);
CREATE INDEX grants_created ON grants (created_at);

-- seq is assigned by the store (gapless), not by the database.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    request_id  TEXT,
    approval_id TEXT,
    grant_id    TEXT,
    canonical   TEXT   NOT NULL
);
CREATE INDEX events_request ON events (request_id, seq);
CREATE INDEX events_grant ON events (grant_id, seq);

CREATE TABLE passwords (
    identity TEXT PRIMARY KEY,
    phc      TEXT NOT NULL
);

CREATE TABLE totp (
    identity   TEXT   PRIMARY KEY,
    secret_b32 TEXT   NOT NULL,
    confirmed  BIGINT NOT NULL,
    last_step  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT   PRIMARY KEY,
    identity   TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    key_hash   TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked    BIGINT NOT NULL
);
CREATE INDEX api_keys_identity ON api_keys (identity);

CREATE TABLE sessions (
    token_hash TEXT   PRIMARY KEY,
    identity   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
