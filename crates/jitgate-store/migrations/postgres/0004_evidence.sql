-- Evidence, PostgreSQL flavour. Keep in step with ../sqlite/0004_evidence.sql: the two differ
-- only in DDL (identity columns). See docs/evidence.md.

-- Signed checkpoints of the event log: "the first tree_size events have Merkle root
-- root_hash, as of at", signed with the evidence key key_id. Every field the signature
-- covers is a column, so a checkpoint is rebuilt from its row and any edit of the row breaks
-- its signature. All of them are kept: each is evidence of what the log held at its time.
-- `at` is BIGINT unix milliseconds; the signed text spells it RFC 3339 with milliseconds.
CREATE TABLE checkpoints (
    pos       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id    TEXT   NOT NULL,
    tree_size BIGINT NOT NULL,
    root_hash TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    key_id    TEXT   NOT NULL,
    signature TEXT   NOT NULL
);
CREATE INDEX checkpoints_size ON checkpoints (tree_size, pos);

-- The text of every policy of every policy set the server has decided with, by set hash:
-- a bundle carries the text of the policies that determined its decision, which the event
-- log names only by id and set hash. Rows are written once and never changed.
CREATE TABLE policy_texts (
    set_hash  TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    text      TEXT NOT NULL,
    PRIMARY KEY (set_hash, policy_id)
);
