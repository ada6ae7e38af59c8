-- Where the streamer's camera sits in a library clip (x,y,w,h fractions of the frame): kept
-- with the clip, so every montage made from it splits its portrait cut the same way.
ALTER TABLE clips ADD COLUMN facecam TEXT;
