-- +goose Up
-- Alert rules: the rule as JSON (validated by console/alerts), with the
-- columns that scoping and listing need.
CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    source     TEXT NOT NULL,   -- api, or file:<name> for rules from configs/
    body       TEXT NOT NULL,   -- JSON of the rule
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX alert_rules_org ON alert_rules(org_id);

-- Alerts: one per (rule, device) while open; repeats update value, peak
-- and count. state: active, acknowledged, dispatched, resolved, closed.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    rule_name   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    device_name TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    org_id      TEXT NOT NULL,   -- the device's organisation
    metric      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    cleared_at  INTEGER,         -- the condition is back to normal
    value       REAL NOT NULL,
    peak        REAL NOT NULL,
    bound       REAL NOT NULL,
    count       INTEGER NOT NULL,
    position    TEXT NOT NULL DEFAULT '',  -- JSON [lat, lon] for geofences
    feeds       TEXT NOT NULL,             -- JSON: the cameras that show it
    dispatch    TEXT NOT NULL DEFAULT '',  -- JSON: to whom it was dispatched
    clips       TEXT NOT NULL DEFAULT '[]' -- JSON: ids of the clips saved for it (the moments before it)
);
CREATE INDEX alerts_org_started ON alerts(org_id, started_at);
CREATE INDEX alerts_pair ON alerts(rule_id, device_id, started_at);

-- The steps of each alert's lifecycle, with who, when and the note.
CREATE TABLE alert_steps (
    alert_id TEXT NOT NULL,
    step     TEXT NOT NULL,     -- raised, escalated, cleared, refired, acknowledged, dispatched, resolved, closed
    actor    TEXT NOT NULL,
    note     TEXT NOT NULL,
    severity TEXT NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX alert_steps_alert ON alert_steps(alert_id, at);

-- +goose Down
DROP TABLE alert_steps;
DROP TABLE alerts;
DROP TABLE alert_rules;
