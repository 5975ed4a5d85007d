-- OpenSSH certificates issued under grants (jitgate_core::ssh): one row per certificate,
-- for the rule that a public key is certified for one grant only, and for the teardown's
-- downstream check (when the last target certificate of a grant expires). Same DDL on
-- both backends; keep ../sqlite and ../postgres in step. Times are unix ms.
-- kind: `user` (subject -> gateway) | `target` (gateway -> asset). serial is decimal text
-- (an OpenSSH serial is an unsigned 64-bit number). key_fingerprint is OpenSSH's
-- `SHA256:<base64>` of the certified public key.
CREATE TABLE ssh_certificates (
    serial          TEXT   PRIMARY KEY,
    grant_id        TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    asset           TEXT   NOT NULL,
    principal       TEXT   NOT NULL,
    key_fingerprint TEXT   NOT NULL,
    valid_after     BIGINT NOT NULL,
    valid_before    BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL
);
CREATE INDEX ssh_certificates_key ON ssh_certificates (key_fingerprint);
CREATE INDEX ssh_certificates_grant ON ssh_certificates (grant_id);
