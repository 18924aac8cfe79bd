-- Idempotency keys of the admin API's creates (docs/architecture.md, the admin API): a key
-- is stored by the transaction of the create it came with, next to its audit event, so two
-- creates under one key cannot both commit. `fingerprint` is a digest of the request (method,
-- path, body); `target` names what the create made, to answer a retry with it. Kept a day.
CREATE TABLE idempotency_keys (
    id          BIGSERIAL PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    target      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, key)
);
