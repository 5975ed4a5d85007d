-- Session recordings (jitgate_core::recording): one row per chunk, written with the chunk's
-- `recording.chunk` event (same transaction; the hashes are the event's), and its bytes
-- filled in when the gateway delivers them and they match. Same DDL on both backends; keep
-- ../sqlite and ../postgres in step. Times are unix ms. `data` is the chunk's bytes in
-- standard base64 (NULL until delivered); `last` is 0 or 1; hashes are lowercase hex.
CREATE TABLE recording_chunks (
    session_id   TEXT   NOT NULL,
    idx          BIGINT NOT NULL,
    grant_id     TEXT   NOT NULL,
    gateway      TEXT   NOT NULL,
    event_seq    BIGINT NOT NULL,
    byte_offset  BIGINT NOT NULL,
    length       BIGINT NOT NULL,
    last         BIGINT NOT NULL,
    prev_hash    TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    recorded_at  BIGINT NOT NULL,
    data         TEXT,
    stored_at    BIGINT,
    PRIMARY KEY (session_id, idx)
);
CREATE INDEX recording_chunks_grant ON recording_chunks (grant_id);
