-- Teardown verification (one row per ended grant) and withdrawable approvals.
-- Same DDL on both backends.

-- verdict: pending | verified | partial | failed. `report` is the JSON of every check with
-- its evidence; `next_attempt_at` is NULL once the verdict is final (verified or partial).
CREATE TABLE teardowns (
    grant_id        TEXT   PRIMARY KEY,
    verdict         TEXT   NOT NULL,
    report          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    started_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX teardowns_due ON teardowns (next_attempt_at);
CREATE INDEX teardowns_verdict ON teardowns (verdict);

-- An approver may withdraw an approval; the row stays (with the time) and stops counting.
ALTER TABLE approvals ADD COLUMN withdrawn_at BIGINT;
