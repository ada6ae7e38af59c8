ALTER TABLE jobs DROP CONSTRAINT jobs_music_check;
UPDATE jobs SET music = NULL WHERE music = ':upload';
ALTER TABLE jobs RENAME COLUMN music TO music_id;
ALTER TABLE jobs ADD CONSTRAINT jobs_music_id_check CHECK (music_id ~ '^[a-z0-9_]{1,64}$');
