-- Where the streamer's camera sits (x,y,w,h in fractions of the frame): the portrait cut
-- puts it in its top third.
ALTER TABLE jobs ADD COLUMN facecam TEXT;
