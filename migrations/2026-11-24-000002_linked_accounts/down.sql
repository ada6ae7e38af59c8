DROP TABLE linked_accounts;
DROP TABLE oauth_states;
