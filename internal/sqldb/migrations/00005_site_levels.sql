-- +goose Up
-- A reservoir's characteristic water levels, metres above datum: dead level,
-- flood-limit level (汛限水位), normal level, design flood level, check flood
-- level. NULL where not set; only reservoirs carry them.
ALTER TABLE sites ADD COLUMN levels TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE sites DROP COLUMN levels;
