-- A montage's music is a catalogue track (its id) or the player's own track, uploaded with
-- the form and stored beside the job's inputs (`:upload`, which no track id can be).
ALTER TABLE jobs RENAME COLUMN music_id TO music;
ALTER TABLE jobs DROP CONSTRAINT jobs_music_id_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_music_check CHECK (music ~ '^([a-z0-9_]{1,64}|:upload)$');
