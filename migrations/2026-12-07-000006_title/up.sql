-- A montage's title, drawn over its first seconds (checked on admission: one line of up to
-- 40 characters the style's font has glyphs for).
ALTER TABLE jobs ADD COLUMN title TEXT CHECK (char_length(title) BETWEEN 1 AND 40);
