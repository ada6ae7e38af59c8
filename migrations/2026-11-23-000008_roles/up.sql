-- Roles (seed 003): named sets of permissions (an action on a kind of resource). Every
-- account is a `user` without a row here: that role acts only on the account's own things.
-- `admin` holds every permission; operators may add named roles.
CREATE TABLE roles (
    name TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{1,49}$'),
    description TEXT NOT NULL DEFAULT '' CHECK (char_length(description) <= 200),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE role_permissions (
    role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('read', 'write', 'delete')),
    resource TEXT NOT NULL CHECK (resource IN ('Job', 'User', 'Role', 'UserData', 'Subscription')),
    PRIMARY KEY (role, action, resource)
);
CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_by_role ON user_roles (role);

INSERT INTO roles (name, description) VALUES
    ('user', 'Every account: its own jobs, clips and data'),
    ('admin', 'Operators: every action on every resource');
INSERT INTO role_permissions (role, action, resource)
    SELECT 'admin', action, resource
    FROM unnest(ARRAY['read', 'write', 'delete']) AS action,
         unnest(ARRAY['Job', 'User', 'Role', 'UserData', 'Subscription']) AS resource;
