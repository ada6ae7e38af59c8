DELETE FROM role_permissions WHERE resource = 'WeeklyMontage';
ALTER TABLE role_permissions DROP CONSTRAINT role_permissions_resource_check;
ALTER TABLE role_permissions ADD CONSTRAINT role_permissions_resource_check
    CHECK (resource IN ('Job', 'User', 'Role', 'UserData', 'Subscription'));
DROP TABLE user_interests;
DROP TABLE view_salts;
DROP TABLE montage_views;
DROP TABLE share_links;
DROP TABLE weekly_runs;
DROP TABLE weekly_montages;
DROP TABLE weekly_settings;
