-- +goose Up
-- Organisations form a tree. path is the chain of ids from the root, each
-- followed by '/', e.g. 'yn/zt/qj/': a subtree is every path with the
-- subtree root's path as its prefix. Ids never change, so paths never do.
CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    parent_id  TEXT REFERENCES orgs(id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    path       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL -- unix ms
);
CREATE INDEX orgs_parent ON orgs(parent_id);

-- Console users. The user name is the id. password_hash is a PHC string
-- ($argon2id$...).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id);

-- Keys that sign tokens. The newest signs; every one listed verifies.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE users;
DROP TABLE orgs;
