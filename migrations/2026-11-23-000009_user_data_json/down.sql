ALTER TABLE user_data ALTER COLUMN value TYPE jsonb USING value::jsonb;
