-- The outputs' frame rate when the player chose one; NULL: the footage decides (60 when
-- most of it is 50 fps or more, else 30).
ALTER TABLE jobs ADD COLUMN fps SMALLINT CHECK (fps IN (30, 60));
