DELETE FROM weekly_montages WHERE outcome = 'over_quota';
ALTER TABLE weekly_montages DROP CONSTRAINT weekly_montages_outcome_check;
ALTER TABLE weekly_montages ADD CONSTRAINT weekly_montages_outcome_check
    CHECK (outcome IN ('built', 'too_little'));
