-- OIDC sign-in for people (docs/sso.md). Same in both flavours; keep ../sqlite and
-- ../postgres in step.
-- Roles an SSO sign-in's groups added to this session only (comma-separated; empty for
-- every other session). `method` is `oidc` for these sessions.
ALTER TABLE sessions ADD COLUMN roles TEXT NOT NULL DEFAULT '';
-- Sign-ins sent to a provider and not back yet, by the SHA-256 of their `state`; taken
-- (deleted) by the callback, so a state works once. Console sign-ins are bound to the
-- browser (`browser_hash`: SHA-256 of a cookie set when the sign-in started); CLI sign-ins
-- to the CLI's loopback port and PKCE challenge. Times are unix ms.
CREATE TABLE sso_logins (
    state_hash    TEXT    PRIMARY KEY,
    provider      TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    browser_hash  TEXT,
    cli_port      INTEGER,
    cli_challenge TEXT,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
-- CLI sign-ins completed at the provider, waiting for the CLI to redeem them with its PKCE
-- verifier (by the SHA-256 of the one-time code sent to its loopback address).
CREATE TABLE sso_handoffs (
    code_hash  TEXT   PRIMARY KEY,
    challenge  TEXT   NOT NULL,
    sign_in    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sso_handoffs_expires ON sso_handoffs (expires_at);
