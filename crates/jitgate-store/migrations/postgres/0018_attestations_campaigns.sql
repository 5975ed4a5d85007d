-- Post-session attestations and review campaigns, PostgreSQL flavour. Keep in step
-- with ../sqlite/0018_attestations_campaigns.sql: the two differ only in DDL (identity columns).
-- Timestamps are BIGINT unix milliseconds, booleans BIGINT 0/1, JSON as TEXT.

-- One row per grant whose policy required an attestation (written when the grant is issued,
-- attested_at NULL until the subject attests) or that was attested without being required.
-- Once attested_at is set the row is never changed (the attestation.recorded event is the
-- record; this row is what lists read).
CREATE TABLE attestations (
    pos          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id     TEXT   NOT NULL UNIQUE REFERENCES grants (id),
    request_id   TEXT   NOT NULL,
    subject      TEXT   NOT NULL,
    required     BIGINT NOT NULL,
    attester     TEXT,
    task_done    BIGINT,
    changes      TEXT,
    note         TEXT,
    attested_at  BIGINT
);
CREATE INDEX attestations_waiting ON attestations (pos) WHERE attested_at IS NULL AND required = 1;

-- A review campaign over [period_start, period_end), optionally one site. state: open | closed.
CREATE TABLE campaigns (
    pos          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT   NOT NULL UNIQUE,
    period_start BIGINT NOT NULL,
    period_end   BIGINT NOT NULL,
    site         TEXT,
    state        TEXT   NOT NULL,
    opened_by    TEXT   NOT NULL,
    opened_at    BIGINT NOT NULL,
    closed_by    TEXT,
    closed_at    BIGINT
);

-- The items a campaign lists, fixed when it is opened. kind: the core's ItemKind as JSON;
-- decision: keep | narrow | end (NULL until decided), effect: the core's DecisionEffect.
CREATE TABLE campaign_items (
    pos          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  TEXT   NOT NULL REFERENCES campaigns (id),
    item_key     TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    subject      TEXT   NOT NULL,
    summary      TEXT   NOT NULL,
    decision     TEXT,
    note         TEXT,
    effect       TEXT,
    reviewer     TEXT,
    decided_at   BIGINT,
    UNIQUE (campaign_id, item_key)
);
