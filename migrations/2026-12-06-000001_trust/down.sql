DELETE FROM social_posts WHERE link_id IS NULL;
ALTER TABLE social_posts DROP CONSTRAINT social_posts_link_id_fkey;
ALTER TABLE social_posts ADD CONSTRAINT social_posts_link_id_fkey
    FOREIGN KEY (link_id) REFERENCES linked_accounts (id) ON DELETE CASCADE;
ALTER TABLE social_posts ALTER COLUMN link_id SET NOT NULL;
ALTER TABLE social_posts DROP COLUMN account_name;
DROP TABLE ended_sessions;
ALTER TABLE direct_uploads DROP COLUMN completing_until, DROP COLUMN completed_at;
ALTER TABLE oauth_states DROP COLUMN browser_hash;
