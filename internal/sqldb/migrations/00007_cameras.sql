-- +goose Up
-- Cameras, pulled over RTSP. Each stands at a site and takes the site's
-- organisation, like devices. url and sub_url (the low-resolution stream for
-- small tiles, '' when there is none) may carry the camera's credentials
-- (rtsp://user:password@host/...): they are secrets, answered only redacted.
CREATE TABLE cameras (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    site_id    TEXT NOT NULL REFERENCES sites(id),
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    url        TEXT NOT NULL,
    sub_url    TEXT NOT NULL DEFAULT '',
    mode       TEXT NOT NULL DEFAULT 'always', -- always, or on_demand (pulled while watched)
    lat        REAL NOT NULL,
    lon        REAL NOT NULL,
    meta       TEXT NOT NULL DEFAULT '{}', -- JSON object of strings
    created_at INTEGER NOT NULL            -- unix ms
);
CREATE INDEX cameras_site ON cameras(site_id);

-- +goose Down
DROP TABLE cameras;
