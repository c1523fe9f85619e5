-- +goose Up
-- One row per (device, metric); points refer to it by number, which keeps
-- the points table narrow.
CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (device, metric)
);
-- Clustered by series then time: appends are cheap, a range of one series
-- is one contiguous scan, and (series, ts) is unique, so a replayed point
-- replaces itself.
CREATE TABLE points (
    series INTEGER NOT NULL,
    ts     INTEGER NOT NULL, -- Unix ms
    value  REAL,
    text   TEXT,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE points;
DROP TABLE series;
