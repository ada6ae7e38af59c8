-- Stripe billing. users.plan stays the one place entitlements are read from; webhooks change
-- it in the same transaction that records the event.
ALTER TABLE users ADD COLUMN stripe_customer_id TEXT UNIQUE;

CREATE TABLE subscriptions (
    user_id                 UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    stripe_subscription_id  TEXT UNIQUE,
    plan                    TEXT NOT NULL CHECK (plan IN ('free', 'pro')),
    -- Stripe's subscription status: active, trialing, past_due, unpaid, canceled, incomplete…
    status                  TEXT NOT NULL CHECK (length(status) BETWEEN 1 AND 40),
    current_period_end      TIMESTAMPTZ,
    cancel_at_period_end    BOOLEAN NOT NULL DEFAULT false,
    -- `created` of the newest event applied: an older event never moves the row backwards.
    last_event_at           TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every webhook event processed, recorded with its effect: a redelivery changes nothing.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type         TEXT NOT NULL,
    created      TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
