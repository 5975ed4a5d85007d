-- Failed sign-ins and step-up codes, counted per identity name and per source address
-- (jitgate_core::lockout). Same in both flavours; keep ../sqlite and ../postgres in step.
-- `kind` is `identity` or `source`; `value` the identity as clients named it, or the address.
-- Times are unix ms.
CREATE TABLE auth_failures (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    locked_until BIGINT,
    PRIMARY KEY (kind, value)
);
