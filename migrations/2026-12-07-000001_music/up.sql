-- A catalogue track laid under the montage, cut on its beats (GET /api/v2/music lists them).
ALTER TABLE jobs ADD COLUMN music_id TEXT
    CHECK (music_id ~ '^[a-z0-9_]{1,64}$');
