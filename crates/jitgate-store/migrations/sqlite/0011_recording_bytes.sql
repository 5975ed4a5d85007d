-- Recording chunk bytes move out of `recording_chunks` into a table of their own, as raw
-- bytes (they were standard base64 TEXT in `recording_chunks.data`): listing recordings and
-- reading a chain's head then never touch them (SQLite walked every stored chunk's overflow
-- pages to reach `stored_at`), and they are a third smaller. `stored_at` stays with the
-- chunk's row (set when its bytes are stored).
-- SQLite has no base64 decoder in SQL, so the bytes already stored are decoded and moved,
-- and the old column dropped, in Rust right after this migration, in one transaction
-- (`jitgate-store/src/recordings.rs`, `move_base64_data`); PostgreSQL's migration does it
-- in SQL. Nothing is dropped before it is moved.
CREATE TABLE recording_chunk_data (
    session_id  TEXT   NOT NULL,
    idx         BIGINT NOT NULL,
    data        BLOB   NOT NULL,
    PRIMARY KEY (session_id, idx),
    FOREIGN KEY (session_id, idx) REFERENCES recording_chunks (session_id, idx)
);
