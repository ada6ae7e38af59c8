ALTER TABLE weekly_settings DROP COLUMN music_id;
