-- A week with enough clips whose job the plan's quotas refused (jobs waiting or running,
-- storage, an unverified account's allowance) is recorded as such, once, like the others.
ALTER TABLE weekly_montages DROP CONSTRAINT weekly_montages_outcome_check;
ALTER TABLE weekly_montages ADD CONSTRAINT weekly_montages_outcome_check
    CHECK (outcome IN ('built', 'too_little', 'over_quota'));
