-- +goose Up
-- Clips: spans of a camera's pre-alert buffer saved as MP4 files under
-- data_dir/clips/{camera_id}/{id}.mp4 (ingest/clips). A clip keeps the
-- organisation its camera had when it was made, and is scoped by it: it
-- outlives its camera's changes and deletion.
CREATE TABLE clips (
    id          TEXT PRIMARY KEY,
    camera_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    from_ms     INTEGER NOT NULL,  -- unix ms: the first frame (a keyframe)
    to_ms       INTEGER NOT NULL,  -- unix ms: the last frame
    duration_ms INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    codec       TEXT NOT NULL,     -- H264 or H265
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,     -- a user id, or the component that asked
    created_at  INTEGER NOT NULL
);
CREATE INDEX clips_camera ON clips(camera_id, from_ms);
CREATE INDEX clips_org ON clips(org_id, from_ms);

-- +goose Down
DROP TABLE clips;
