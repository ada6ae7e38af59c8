DROP TABLE user_data;
