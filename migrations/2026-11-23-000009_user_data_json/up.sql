-- Values are stored as the JSON text the client sent (`json`, not `jsonb`): jsonb turns
-- numbers into numerics, and some (1.7976931348623157e308) came back as digits a client's
-- JSON parser cannot read. Nothing queries inside a value.
ALTER TABLE user_data ALTER COLUMN value TYPE json USING value::json;
