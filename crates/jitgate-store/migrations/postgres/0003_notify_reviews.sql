-- Outgoing notifications (webhook outbox) and post-session reviews, PostgreSQL flavour. Keep in
-- step with ../sqlite/0003_notify_reviews.sql: the two differ only in DDL (identity
-- columns). Timestamps are BIGINT unix milliseconds, booleans BIGINT 0/1, JSON as TEXT.

-- One row per (notice, webhook), written in the transaction of the state change that caused
-- it, so a committed change never loses its notification. `payload` is the format-neutral
-- JSON envelope; the body sent (JSON or Slack) is rendered from it at delivery.
-- Pending rows have `delivered_at IS NULL`; `next_attempt_at` is when to try next (a
-- delivering server moves it ahead as a lease, so several nodes do not send the same row).
CREATE TABLE notifications (
    pos             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT   NOT NULL UNIQUE,
    webhook         TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX notifications_created ON notifications (created_at);

-- A mandatory post-session review of a grant, at most one per (grant, reason).
-- reason: break_glass | legacy_asset; outcome: ok | finding (NULL while open).
CREATE TABLE reviews (
    pos              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id         TEXT   NOT NULL REFERENCES grants (id),
    request_id       TEXT   NOT NULL,
    subject          TEXT   NOT NULL,
    reason           TEXT   NOT NULL,
    detail           TEXT   NOT NULL,
    opened_at        BIGINT NOT NULL,
    due_at           BIGINT NOT NULL,
    overdue_notified BIGINT NOT NULL,
    reviewer         TEXT,
    outcome          TEXT,
    note             TEXT,
    completed_at     BIGINT,
    UNIQUE (grant_id, reason)
);
CREATE INDEX reviews_open ON reviews (due_at) WHERE completed_at IS NULL;
CREATE INDEX reviews_opened ON reviews (opened_at);
