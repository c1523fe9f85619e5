-- +goose Up
-- Petitions (信访) of resettled residents. The petitioner's name, phone
-- and ID number are stored encrypted (AES-GCM under a key derived from the
-- server's secret) next to masked forms for lists; only roles that need
-- them read them whole.
CREATE TABLE petitions (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    site_id      TEXT NOT NULL DEFAULT '',
    name_enc     BLOB NOT NULL,
    phone_enc    BLOB NOT NULL,
    id_no_enc    BLOB NOT NULL,
    name_masked  TEXT NOT NULL,
    phone_masked TEXT NOT NULL,
    id_no_masked TEXT NOT NULL,
    subject      TEXT NOT NULL,
    description  TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL, -- unix ms
    updated_at   INTEGER NOT NULL
);
CREATE INDEX petitions_org ON petitions(org_id, state);

-- Each step of a petition's life, oldest first.
CREATE TABLE petition_steps (
    petition_id TEXT NOT NULL REFERENCES petitions(id),
    seq         INTEGER NOT NULL,
    step        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    note        TEXT NOT NULL,
    at          INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (petition_id, seq)
);

-- +goose Down
DROP TABLE petition_steps;
DROP TABLE petitions;
