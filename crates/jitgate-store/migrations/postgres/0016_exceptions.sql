-- Standing exceptions (docs/exceptions.md). Keep in step with ../sqlite/0016_exceptions.sql:
-- the two differ only in the identity column. Timestamps are BIGINT unix milliseconds, JSON
-- as TEXT.
-- An exception rides on a request of path `standing` (one exception per request): its
-- subject, scope, reason and state are the request's; its grant is the request's grant.
-- This row adds the owner, the compensating controls and the re-validation clock.
CREATE TABLE exceptions (
    pos                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    TEXT   NOT NULL UNIQUE,
    request_id            TEXT   NOT NULL UNIQUE REFERENCES requests (id),
    owner                 TEXT   NOT NULL,
    controls              TEXT   NOT NULL,
    revalidate_every_secs BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    next_revalidation     BIGINT NOT NULL,
    last_revalidated_at   BIGINT,
    last_revalidated_by   TEXT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX exceptions_created ON exceptions (created_at);
CREATE INDEX exceptions_due ON exceptions (next_revalidation);
CREATE INDEX exceptions_owner ON exceptions (owner, created_at);
