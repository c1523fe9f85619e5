-- +goose Up
-- The attachments of petitions (信访材料): photos of a house, a scanned
-- compensation agreement, an ID card. They are personal data like the
-- petitioner's: the content and the name (which often carries a person's
-- name) are stored encrypted, bound to the petition and the attachment so
-- that a blob copied to another row does not open. Type, size and the
-- SHA-256 of the plaintext stay in the clear for the lists and the limits.
CREATE TABLE petition_attachments (
    id           TEXT PRIMARY KEY,
    petition_id  TEXT NOT NULL REFERENCES petitions(id),
    seq          INTEGER NOT NULL, -- upload order: the neutral name 附件 <seq>
    name_enc     BLOB NOT NULL,
    content_type TEXT NOT NULL,    -- the sniffed type, never the client's
    size         INTEGER NOT NULL, -- bytes of the plaintext
    sha256       TEXT NOT NULL,    -- hex, of the plaintext
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL, -- unix ms
    content_enc  BLOB NOT NULL
);
CREATE INDEX petition_attachments_petition ON petition_attachments(petition_id, seq);

-- +goose Down
DROP TABLE petition_attachments;
