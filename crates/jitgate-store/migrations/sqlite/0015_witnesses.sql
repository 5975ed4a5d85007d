-- Witness cosignatures of checkpoints (docs/evidence.md, "Witnesses"). Same in both flavours;
-- keep ../sqlite and ../postgres in step.
-- A checkpoint is named by what its signed text holds: tree size, root and time (unix ms, as
-- in `checkpoints.at`). `line` is the cosignature as it travels, a signed-note signature
-- line; `cosigned_at` is the witness's own timestamp inside it (unix seconds). One
-- cosignature per witness and checkpoint: the first one received is kept.
CREATE TABLE checkpoint_cosignatures (
    tree_size   BIGINT NOT NULL,
    root_hash   TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    witness     TEXT   NOT NULL,
    cosigned_at BIGINT NOT NULL,
    line        TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tree_size, root_hash, at, witness)
);
