-- The track weekly montages are cut to; none: the game sound alone.
ALTER TABLE weekly_settings ADD COLUMN music_id TEXT
    CHECK (music_id ~ '^[a-z0-9_]{1,64}$');
