DROP TABLE stripe_events;
DROP TABLE subscriptions;
ALTER TABLE users DROP COLUMN stripe_customer_id;
