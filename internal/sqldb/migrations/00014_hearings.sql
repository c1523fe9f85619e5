-- +goose Up
-- Remote petition hearings: one petition heard by video, with a link for
-- the resident (its current link id, the device that used it), the
-- officer's notes, the outcome, the signed record, and the recordings.
CREATE TABLE hearings (
    id                 TEXT PRIMARY KEY,
    petition_id        TEXT NOT NULL REFERENCES petitions(id),
    org_id             TEXT NOT NULL REFERENCES orgs(id),
    room_id            TEXT NOT NULL,
    officer_id         TEXT NOT NULL,
    others             TEXT NOT NULL DEFAULT '[]', -- JSON [{name, role}]
    starts_at          INTEGER NOT NULL, -- unix ms
    link_expires_at    INTEGER NOT NULL,
    state              TEXT NOT NULL,
    link_id            TEXT NOT NULL DEFAULT '', -- '' when revoked
    link_device        TEXT NOT NULL DEFAULT '', -- SHA-256 of the device's cookie
    allow_other_device INTEGER NOT NULL DEFAULT 0,
    consent_at         INTEGER NOT NULL DEFAULT 0,
    admitted_at        INTEGER NOT NULL DEFAULT 0,
    ended_at           INTEGER NOT NULL DEFAULT 0,
    outcome            TEXT NOT NULL DEFAULT '',
    outcome_note       TEXT NOT NULL DEFAULT '',
    record             TEXT NOT NULL DEFAULT '', -- the signed record (JSON)
    signature          TEXT NOT NULL DEFAULT '',
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX hearings_org ON hearings(org_id, starts_at);
CREATE INDEX hearings_petition ON hearings(petition_id);

CREATE TABLE hearing_notes (
    hearing_id TEXT NOT NULL REFERENCES hearings(id),
    seq        INTEGER NOT NULL,
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (hearing_id, seq)
);

-- One file per participant source (camera, microphone) per hearing.
CREATE TABLE hearing_recordings (
    id          TEXT PRIMARY KEY,
    hearing_id  TEXT NOT NULL REFERENCES hearings(id),
    identity    TEXT NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    codec       TEXT NOT NULL,
    file        TEXT NOT NULL, -- relative to the recordings directory
    state       TEXT NOT NULL, -- recording, complete, failed, deleted
    bytes       INTEGER NOT NULL DEFAULT 0,
    sha256      TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL DEFAULT 0,
    pauses      TEXT NOT NULL DEFAULT '[]', -- JSON [{from, to}]
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER NOT NULL DEFAULT 0,
    deleted_by  TEXT NOT NULL DEFAULT '',
    deleted_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX hearing_recordings_hearing ON hearing_recordings(hearing_id);

-- +goose Down
DROP TABLE hearing_recordings;
DROP TABLE hearing_notes;
DROP TABLE hearings;
