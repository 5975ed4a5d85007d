-- Workload identity federation (docs/federation.md). Same in both flavours; keep ../sqlite
-- and ../postgres in step.
-- How each session was opened: `password` (sign-in) or `federated_jwt` (a platform token
-- exchanged at POST /auth/federate). Sessions from before are password sign-ins.
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';
-- Platform tokens already exchanged, remembered until they expire so that a second exchange
-- of the same token is refused on every node. `token_key` is the SHA-256 of the issuer and
-- `jti` (or of the token when it has none); times are unix ms.
CREATE TABLE federation_replay (
    token_key  TEXT   PRIMARY KEY,
    issuer     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX federation_replay_expires ON federation_replay (expires_at);
