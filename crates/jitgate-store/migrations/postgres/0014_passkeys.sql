-- Passkeys (WebAuthn) for step-up approvals (docs/passkeys.md). Same in both flavours; keep
-- ../sqlite and ../postgres in step. Times are unix ms.
-- One row per enrolled credential; a removed one keeps its row (removed_at set), so that an
-- assertion by it is refused as removed and its id is never enrolled again.
CREATE TABLE passkeys (
    credential_id TEXT   PRIMARY KEY, -- base64url of the WebAuthn credential id
    identity      TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    passkey       TEXT   NOT NULL,    -- the library's credential (public key, counter), JSON
    counter       BIGINT NOT NULL,    -- the signature counter last accepted
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    removed_at    BIGINT
);
CREATE INDEX passkeys_identity ON passkeys (identity);
-- The challenge of each ceremony (registration or step-up), with the library's state and
-- what it is bound to: a step-up challenge to one request and its scope digest. Used once
-- (used_at), refused after expires_at, deleted a day after.
CREATE TABLE passkey_challenges (
    id           TEXT   PRIMARY KEY,
    identity     TEXT   NOT NULL,
    purpose      TEXT   NOT NULL,     -- jitgate_core::passkey::ChallengePurpose, JSON
    state        TEXT   NOT NULL,     -- the library's ceremony state, JSON
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
