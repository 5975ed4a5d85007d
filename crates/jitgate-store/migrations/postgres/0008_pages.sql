-- Keyset pagination (src/page.rs): every list continues after the row its cursor names,
-- compared on the list's order, so each order has an index. Same in both flavours; keep
-- ../sqlite and ../postgres in step. The composite indexes replace the single-column ones
-- on the same time column.
DROP INDEX requests_created;
CREATE INDEX requests_created ON requests (created_at, pos);
DROP INDEX grants_created;
CREATE INDEX grants_created ON grants (created_at, pos);
DROP INDEX notifications_created;
CREATE INDEX notifications_created ON notifications (created_at, pos);
DROP INDEX reviews_opened;
CREATE INDEX reviews_opened ON reviews (opened_at, pos);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
DROP INDEX teardowns_verdict;
CREATE INDEX teardowns_verdict ON teardowns (verdict, started_at, grant_id);
