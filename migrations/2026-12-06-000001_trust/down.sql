DROP TABLE ended_sessions;
ALTER TABLE direct_uploads DROP COLUMN completing_until, DROP COLUMN completed_at;
ALTER TABLE oauth_states DROP COLUMN browser_hash;
