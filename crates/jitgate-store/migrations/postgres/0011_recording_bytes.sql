-- Recording chunk bytes move out of `recording_chunks` into a table of their own, as raw
-- bytes (they were standard base64 TEXT in `recording_chunks.data`): listing recordings and
-- reading a chain's head then never touch them, and they are a third smaller. Bytes already
-- stored are decoded into the new table; nothing is dropped. `stored_at` stays with the
-- chunk's row (set when its bytes are stored).
-- SQLite has no base64 decoder in SQL: there the move is done in Rust when the store opens
-- (`jitgate-store/src/recordings.rs`, `move_base64_data`); the resulting schema is the same.
CREATE TABLE recording_chunk_data (
    session_id  TEXT   NOT NULL,
    idx         BIGINT NOT NULL,
    data        BYTEA  NOT NULL,
    PRIMARY KEY (session_id, idx),
    FOREIGN KEY (session_id, idx) REFERENCES recording_chunks (session_id, idx)
);
INSERT INTO recording_chunk_data (session_id, idx, data)
    SELECT session_id, idx, decode(data, 'base64') FROM recording_chunks WHERE data IS NOT NULL;
ALTER TABLE recording_chunks DROP COLUMN data;
