-- +goose Up
-- Sites: reservoirs, ports, resettlement communities, streets. Each belongs
-- to an organisation; its devices and cameras inherit that organisation.
CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    lat        REAL NOT NULL,
    lon        REAL NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sites_org ON sites(org_id);

-- Devices. mqtt_secret_hash is the SHA-256 of the device's MQTT password,
-- a random 128-bit secret made by the server (see devices/credentials.go).
CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    site_id          TEXT NOT NULL REFERENCES sites(id),
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    lat              REAL NOT NULL,
    lon              REAL NOT NULL,
    meta             TEXT NOT NULL DEFAULT '{}',
    mqtt_secret_hash BLOB,
    created_at       INTEGER NOT NULL
);
CREATE INDEX devices_site ON devices(site_id);
CREATE INDEX devices_org ON devices(org_id);

-- +goose Down
DROP TABLE devices;
DROP TABLE sites;
