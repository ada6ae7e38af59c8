-- A poster (JPEG) per output. Nullable: outputs rendered before posters existed have none.
ALTER TABLE job_outputs ADD COLUMN poster_key TEXT UNIQUE;
