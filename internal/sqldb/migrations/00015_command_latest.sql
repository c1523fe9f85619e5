-- +goose Up
-- The newest command of each name per device, which the desired state
-- (devices/desired.go) reads, in place of an index of every command by
-- device: that index took a write of its own page for nearly every
-- command (a group of 1,000 lamps touches 1,000 of its leaves), while this
-- table has one small row per device and command name, and a group's rows
-- share a few pages.
CREATE TABLE command_latest (
    device_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    command_id TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
) WITHOUT ROWID;
INSERT INTO command_latest(device_id, name, command_id)
    SELECT device_id, name, id FROM (
        SELECT device_id, name, id, row_number() OVER (PARTITION BY device_id, name ORDER BY created_at DESC, rowid DESC) AS n
        FROM commands)
    WHERE n = 1;
DROP INDEX commands_device;

-- +goose Down
CREATE INDEX commands_device ON commands(device_id, name, created_at);
DROP TABLE command_latest;
