-- Governance: who filed a request with which API key, and API keys' minter and expiry.
-- Same in both flavours (plain ALTERs); keep ../sqlite and ../postgres in step.

-- JSON {"key_id", "minted_by"} when the requester authenticated with an API key: the minter
-- of that key never approves the request (separation of duties), and the request stops
-- standing when the key is revoked or expires.
ALTER TABLE requests ADD COLUMN filed_with_key TEXT;

-- Who minted the key (NULL for keys minted before this was recorded) and when it stops
-- working (unix ms; NULL = keys minted before expiries existed, shown as "no expiry").
ALTER TABLE api_keys ADD COLUMN minted_by TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
