-- +goose Up
-- Meeting rooms: each belongs to an organisation, like every resource; the
-- SFU holds who is in them, this table what they are.
CREATE TABLE rooms (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    max_participants INTEGER NOT NULL,
    locked           INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL -- unix ms
);
CREATE INDEX rooms_org ON rooms(org_id);

-- +goose Down
DROP TABLE rooms;
