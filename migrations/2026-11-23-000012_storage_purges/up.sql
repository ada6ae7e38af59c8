-- Storage prefixes whose objects must go: a deleted account's jobs, or a job a worker found
-- deleted under it. Workers' housekeeping deletes everything under each prefix and then the
-- row; a pass that fails leaves the row for a later one (`not_before`).
CREATE TABLE storage_purges (
    prefix TEXT PRIMARY KEY,
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
