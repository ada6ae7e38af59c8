DROP TABLE storage_purges;
