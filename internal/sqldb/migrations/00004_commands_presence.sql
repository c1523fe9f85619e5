-- +goose Up
-- Commands to devices and their lifecycle:
-- pending -> sent -> acked | failed | timeout, or pending -> expired.
CREATE TABLE commands (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    params      TEXT NOT NULL,   -- JSON object
    state       TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    queue       INTEGER NOT NULL, -- wait for an offline device until expires_at
    timeout_ms  INTEGER NOT NULL, -- from sending to the ack
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    done_at     INTEGER,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX commands_device ON commands(device_id, created_at);
CREATE INDEX commands_active ON commands(state) WHERE state IN ('pending', 'sent');

-- Online state changes of devices, with their time.
CREATE TABLE presence (
    device_id TEXT NOT NULL,
    state     TEXT NOT NULL, -- online, offline, stale
    at        INTEGER NOT NULL
);
CREATE INDEX presence_device ON presence(device_id, at);

-- +goose Down
DROP TABLE presence;
DROP TABLE commands;
