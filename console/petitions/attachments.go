package petitions

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Limits of a petition's attachments (信访材料). A phone photo is 2-6 MB
// and a scanned agreement a few MB of PDF; 20 files and 50 MiB hold a
// case's material while keeping the state database (where the sealed
// content lives) from growing without bound.
const (
	MaxAttachmentBytes  = 10 << 20 // one file
	MaxAttachments      = 20       // files per petition
	MaxAttachmentsBytes = 50 << 20 // all of a petition's files
)

// typeExts are the types an attachment may have, decided by its content
// (never by its name or the client's Content-Type), with their
// extensions, the usual one first. An officer needs photos (JPEG from
// cameras and phones, PNG screenshots, WebP from messaging apps) and
// scans (PDF). Left out on purpose: SVG and HTML (they carry script),
// office documents and archives (they carry macros and other files, and
// print to PDF anyway), audio and video (hearings are recorded by the
// hearing room, not uploaded), and HEIC, which net/http does not sniff
// and which phones' browsers convert to JPEG on upload.
var typeExts = map[string][]string{
	"image/jpeg":      {"jpg", "jpeg"},
	"image/png":       {"png"},
	"image/webp":      {"webp"},
	"application/pdf": {"pdf"},
}

// Attachment is a file kept with a petition: the metadata; the content
// comes with Store.Attachment.
type Attachment struct {
	ID         string `json:"id"`
	PetitionID string `json:"petition_id"`
	// Name is the sanitised name the file was uploaded with, or, when
	// Masked, a neutral 附件 <n>: names are personal data ("张三丰身份证
	// .jpg") and go whole only to roles that read personal data.
	Name        string    `json:"name"`
	Masked      bool      `json:"masked"`
	ContentType string    `json:"content_type"` // the sniffed one
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex, of the content
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	// OrgID is the petition's organisation, for the caller's audit
	// entries; it is the petition's, so not repeated in answers.
	OrgID orgs.ID `json:"-"`
	seq   int
}

// Neutral is the attachment's name that says nothing of its content:
// 附件 <n>, n counting the petition's uploads from 1.
func (a Attachment) Neutral() string { return fallbackStem + " " + strconv.Itoa(a.seq) }

// Errors of attachments.
var (
	ErrAttachmentNotFound = errclass.New(errclass.NotFound, "attachment_not_found", "attachment not found")
	ErrAttachmentTooLarge = &errclass.Error{Kind: errclass.Invalid, Code: "attachment_too_large", Field: "file",
		Message: fmt.Sprintf("must be at most %d bytes (10 MiB)", MaxAttachmentBytes)}
	ErrTooManyAttachments = errclass.New(errclass.Conflict, "too_many_attachments",
		fmt.Sprintf("the petition has %d attachments already, the most it may have", MaxAttachments))
	ErrAttachmentsFull = errclass.New(errclass.Conflict, "attachments_full",
		fmt.Sprintf("the petition's attachments would exceed %d bytes (50 MiB) in all", MaxAttachmentsBytes))
	// ErrPetitionClosed: a closed petition's record is final; its
	// material neither grows nor shrinks.
	ErrPetitionClosed = errclass.New(errclass.Conflict, "petition_closed", "the petition is closed: its attachments no longer change")
)

// unsupportedType refuses content of type ct, naming it.
func unsupportedType(ct string) error {
	return &errclass.Error{Kind: errclass.Invalid, Code: "unsupported_attachment_type", Field: "file",
		Message: fmt.Sprintf("the content is %s; a JPEG, PNG or WebP image or a PDF is accepted (decided by the content, not the name)", ct)}
}

// sniff returns the type of data, one of typeExts, or an error naming the
// type it found.
func sniff(data []byte) (string, error) {
	ct, _, err := mime.ParseMediaType(http.DetectContentType(data))
	if err != nil {
		return "", unsupportedType("unknown")
	}
	if _, ok := typeExts[ct]; !ok {
		return "", unsupportedType(ct)
	}
	// DetectContentType looks at the first bytes only; the image formats
	// must also have a header that decodes, so that a file is not let
	// through on its magic bytes alone. A JPEG flavour the decoder does
	// not know (lossless, arithmetic coding) is still a JPEG, and so
	// for PNG.
	var decode func(io.Reader) (image.Config, error)
	switch ct {
	case "image/jpeg":
		decode = jpeg.DecodeConfig
	case "image/png":
		decode = png.DecodeConfig
	}
	if decode != nil {
		var jpegUnsupported jpeg.UnsupportedError
		var pngUnsupported png.UnsupportedError
		if _, err := decode(bytes.NewReader(data)); err != nil && !errors.As(err, &jpegUnsupported) && !errors.As(err, &pngUnsupported) {
			return "", unsupportedType(ct + " with a damaged header")
		}
	}
	return ct, nil
}

func newAttachmentID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "att_" + hex.EncodeToString(b)
}

// sealedFor is the additional data that binds a sealed part (name or
// content) to its attachment and petition: a blob copied to another row,
// or the name swapped with the content, does not open.
func sealedFor(petitionID, attID, part string) string {
	return "attachment/" + petitionID + "/" + attID + "/" + part
}

// petitionOf checks that petition id exists in scope; it returns its
// organisation and state.
func (s *Store) petitionOf(ctx context.Context, scope orgs.Scope, id string) (orgs.ID, string, error) {
	var org orgs.ID
	var state string
	err := s.db.QueryRowContext(ctx, `SELECT org_id, state FROM petitions WHERE id = ?`, id).Scan(&org, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", err
	}
	if !s.tree.Contains(scope, org) {
		return "", "", orgs.ErrOutOfScope
	}
	return org, state, nil
}

// AddAttachment keeps the file read from r with petition petitionID in
// scope, uploaded by actor under name. The file is read whole (at most
// MaxAttachmentBytes; one byte more is refused) before the database is
// touched, its type sniffed, its name sanitised (SanitizeName), and its
// name and content sealed. A read error of r is returned as it is, so the
// caller can tell a broken upload from a refused file. The attachment is
// returned with its name whole.
func (s *Store) AddAttachment(ctx context.Context, scope orgs.Scope, petitionID, actor, name string, r io.Reader) (Attachment, error) {
	org, state, err := s.petitionOf(ctx, scope, petitionID)
	if err != nil {
		return Attachment{}, err
	}
	if state == StateClosed {
		return Attachment{}, ErrPetitionClosed // before reading megabytes for nothing
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxAttachmentBytes+1))
	if err != nil {
		return Attachment{}, err
	}
	if len(data) > MaxAttachmentBytes {
		return Attachment{}, ErrAttachmentTooLarge
	}
	if len(data) == 0 {
		return Attachment{}, errclass.Invalidf("file", "is empty")
	}
	ct, err := sniff(data)
	if err != nil {
		return Attachment{}, err
	}
	sum := sha256.Sum256(data)
	now := s.now().Truncate(time.Millisecond).UTC()
	a := Attachment{ID: newAttachmentID(), PetitionID: petitionID, Name: SanitizeName(name, ct), ContentType: ct, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), CreatedBy: actor, CreatedAt: now, OrgID: org}
	nameEnc := s.seal.SealBytes(sealedFor(petitionID, a.ID, "name"), []byte(a.Name))
	contentEnc := s.seal.SealBytes(sealedFor(petitionID, a.ID, "content"), data)

	// The limits are checked and the row written in one (immediate)
	// transaction: two uploads at once cannot both take the last place.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Attachment{}, err
	}
	defer func() { _ = tx.Rollback() }()
	var count, total, seq int64
	if err := tx.QueryRowContext(ctx, `SELECT p.state, COUNT(a.id), COALESCE(SUM(a.size), 0), COALESCE(MAX(a.seq), 0)
		FROM petitions p LEFT JOIN petition_attachments a ON a.petition_id = p.id WHERE p.id = ? GROUP BY p.id`, petitionID).
		Scan(&state, &count, &total, &seq); err != nil {
		return Attachment{}, err
	}
	switch {
	case state == StateClosed:
		return Attachment{}, ErrPetitionClosed
	case count >= MaxAttachments:
		return Attachment{}, ErrTooManyAttachments
	case total+a.Size > MaxAttachmentsBytes:
		return Attachment{}, ErrAttachmentsFull
	}
	a.seq = int(seq) + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO petition_attachments(id, petition_id, seq, name_enc, content_type, size, sha256, created_by, created_at, content_enc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, petitionID, a.seq, nameEnc, a.ContentType, a.Size, a.SHA256, actor, now.UnixMilli(), contentEnc); err != nil {
		return Attachment{}, fmt.Errorf("add attachment: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE petitions SET updated_at = ? WHERE id = ?`, now.UnixMilli(), petitionID); err != nil {
		return Attachment{}, err
	}
	if err := tx.Commit(); err != nil {
		return Attachment{}, err
	}
	return a, nil
}

const attachmentColumns = `id, petition_id, seq, name_enc, content_type, size, sha256, created_by, created_at`

// scanAttachment reads a row of attachmentColumns (and extra); whole
// opens the name, the neutral name otherwise.
func (s *Store) scanAttachment(row interface{ Scan(...any) error }, org orgs.ID, whole bool, extra ...any) (Attachment, error) {
	var a Attachment
	var nameEnc []byte
	var created int64
	if err := row.Scan(append([]any{&a.ID, &a.PetitionID, &a.seq, &nameEnc, &a.ContentType, &a.Size, &a.SHA256, &a.CreatedBy, &created}, extra...)...); err != nil {
		return Attachment{}, err
	}
	a.CreatedAt, a.OrgID = time.UnixMilli(created).UTC(), org
	if !whole {
		a.Name, a.Masked = a.Neutral(), true
		return a, nil
	}
	name, err := s.seal.OpenBytes(sealedFor(a.PetitionID, a.ID, "name"), nameEnc)
	if err != nil {
		return Attachment{}, err
	}
	a.Name = string(name)
	return a, nil
}

// Attachments lists the attachments of petition petitionID in scope, in
// upload order, without their content; whole opens their names, neutral
// names (附件 1, 附件 2...) otherwise.
func (s *Store) Attachments(ctx context.Context, scope orgs.Scope, petitionID string, whole bool) ([]Attachment, error) {
	org, _, err := s.petitionOf(ctx, scope, petitionID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM petition_attachments WHERE petition_id = ? ORDER BY seq`, petitionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Attachment{}
	for rows.Next() {
		a, err := s.scanAttachment(rows, org, whole)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Attachment returns attachment attID of petition petitionID in scope,
// its name whole, and its content opened. ErrUnsealed when the stored
// blob does not open here (another petition's, or damaged).
func (s *Store) Attachment(ctx context.Context, scope orgs.Scope, petitionID, attID string) (Attachment, []byte, error) {
	org, _, err := s.petitionOf(ctx, scope, petitionID)
	if err != nil {
		return Attachment{}, nil, err
	}
	var contentEnc []byte
	a, err := s.scanAttachment(s.db.QueryRowContext(ctx, `SELECT `+attachmentColumns+`, content_enc FROM petition_attachments WHERE id = ? AND petition_id = ?`,
		attID, petitionID), org, true, &contentEnc)
	if errors.Is(err, sql.ErrNoRows) {
		return Attachment{}, nil, ErrAttachmentNotFound
	}
	if err != nil {
		return Attachment{}, nil, err
	}
	content, err := s.seal.OpenBytes(sealedFor(petitionID, attID, "content"), contentEnc)
	if err != nil {
		return Attachment{}, nil, err
	}
	return a, content, nil
}

// DeleteAttachment removes attachment attID of petition petitionID in
// scope (a photo of the wrong house, a scan of someone else's ID card):
// the personal data is kept no longer than it serves. What is left in the
// database's free pages is ciphertext. It returns the attachment, its
// name neutral, for the caller's audit entry.
func (s *Store) DeleteAttachment(ctx context.Context, scope orgs.Scope, petitionID, attID string) (Attachment, error) {
	org, _, err := s.petitionOf(ctx, scope, petitionID)
	if err != nil {
		return Attachment{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Attachment{}, err
	}
	defer func() { _ = tx.Rollback() }()
	var state string
	a, err := s.scanAttachment(tx.QueryRowContext(ctx, `SELECT `+attachmentColumns+`, (SELECT state FROM petitions WHERE id = petition_id)
		FROM petition_attachments WHERE id = ? AND petition_id = ?`, attID, petitionID), org, false, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return Attachment{}, ErrAttachmentNotFound
	}
	if err != nil {
		return Attachment{}, err
	}
	if state == StateClosed {
		return Attachment{}, ErrPetitionClosed
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM petition_attachments WHERE id = ?`, attID); err != nil {
		return Attachment{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE petitions SET updated_at = ? WHERE id = ?`, s.now().UnixMilli(), petitionID); err != nil {
		return Attachment{}, err
	}
	return a, tx.Commit()
}
