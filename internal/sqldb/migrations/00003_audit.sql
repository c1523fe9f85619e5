-- +goose Up
-- The append-only audit log. Each entry carries the hash of the one before,
-- so that a changed or removed entry breaks the chain (lookout audit
-- verify). Triggers refuse UPDATE and DELETE outright.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL, -- Unix ms
    actor     TEXT NOT NULL,    -- user id, "device:{id}" or "system"
    org_id    TEXT NOT NULL,    -- the organisation the target belongs to
    action    TEXT NOT NULL,    -- e.g. user.create, device.credentials.rotate, command.send
    target    TEXT NOT NULL,
    result    TEXT NOT NULL,    -- ok, or what went wrong
    detail    TEXT NOT NULL,    -- JSON object
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_org_ts ON audit_log(org_id, ts);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- +goose Down
DROP TABLE audit_log;
