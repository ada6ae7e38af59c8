DROP TABLE social_posts;
