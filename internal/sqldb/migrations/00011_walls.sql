-- +goose Up
-- Video walls: each belongs to an organisation, like every resource. The
-- tiles, the wall's patrol and its alert area are JSON (console/walls owns
-- their shape); version counts the changes, so that two editors (or an
-- editor and the server's alert pinning) do not overwrite each other.
CREATE TABLE walls (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    name       TEXT NOT NULL,
    layout     TEXT NOT NULL,
    tiles      TEXT NOT NULL,              -- JSON array of tiles
    patrol     TEXT NOT NULL DEFAULT '',   -- JSON patrol, '' for none
    alert_area TEXT NOT NULL DEFAULT '[]', -- JSON array of tile indexes
    version    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,           -- unix ms
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL            -- unix ms
);
CREATE INDEX walls_org ON walls(org_id);

-- +goose Down
DROP TABLE walls;
