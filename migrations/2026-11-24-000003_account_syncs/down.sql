DROP TABLE import_failures;
DROP TABLE account_syncs;
