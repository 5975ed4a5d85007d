-- Several server nodes on one database (docs/cluster.md). Same DDL on both backends; keep
-- ../sqlite and ../postgres in step. Times are unix ms of the writing node's clock.
--
-- cluster_nodes: every running node, its address and heartbeat; a node whose seen_at is
-- older than the staleness bound is taken as gone.
CREATE TABLE cluster_nodes (
    id          TEXT   PRIMARY KEY,
    url         TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);
-- gateway_links: which node holds each gateway's control channel (the latest one to
-- accept it; a reconnecting gateway may briefly hold two).
CREATE TABLE gateway_links (
    gateway     TEXT   PRIMARY KEY,
    node        TEXT   NOT NULL,
    since       BIGINT NOT NULL
);
-- revocation_acks: a gateway's acknowledgement of a grant's revocation (JSON of
-- jitgate_gateway::wire::RevocationAck), kept where every node's teardown can read it.
CREATE TABLE revocation_acks (
    gateway     TEXT   NOT NULL,
    grant_id    TEXT   NOT NULL,
    ack         TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (gateway, grant_id)
);
-- leases: work that must run on one node at a time. A job is the name of a singleton task
-- (`checkpoints`, `siem:<sink>`) or `teardown:<grant id>`; the holder renews before `until`.
CREATE TABLE leases (
    job         TEXT   PRIMARY KEY,
    node        TEXT   NOT NULL,
    until       BIGINT NOT NULL
);
