-- +goose Up
-- A disabled device keeps its record and history but may not connect, and
-- takes no commands.
ALTER TABLE devices ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- Commands gain the group they were sent in (one request to many devices),
-- and lose the foreign key to devices: a command is part of the record and
-- outlives the device it was sent to. SQLite drops a foreign key only by
-- rebuilding the table.
CREATE TABLE commands_new (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    queue       INTEGER NOT NULL,
    timeout_ms  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    done_at     INTEGER,
    expires_at  INTEGER NOT NULL,
    group_id    TEXT NOT NULL DEFAULT ''
);
INSERT INTO commands_new(id, device_id, org_id, name, params, state, error, queue, timeout_ms, created_by, created_at, sent_at, done_at, expires_at)
    SELECT id, device_id, org_id, name, params, state, error, queue, timeout_ms, created_by, created_at, sent_at, done_at, expires_at FROM commands;
DROP TABLE commands;
ALTER TABLE commands_new RENAME TO commands;
CREATE INDEX commands_device ON commands(device_id, name, created_at);
CREATE INDEX commands_active ON commands(state) WHERE state IN ('pending', 'sent');
CREATE INDEX commands_group ON commands(group_id) WHERE group_id != '';

-- +goose Down
DROP INDEX commands_group;
ALTER TABLE commands DROP COLUMN group_id;
ALTER TABLE devices DROP COLUMN disabled;
