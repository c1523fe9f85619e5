package hearings

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// The signed record: at the end of a hearing what happened (when, who,
// the resident's consent, the notes, the outcome, and each recording's
// size, duration, pauses and SHA-256) is written as JSON and signed with
// Ed25519, so that anyone holding the server's record key (GET
// /api/v1/hearings/record-key) can check that neither the record nor a
// recording was changed. The key is derived from the server's secret: it
// lasts as long as the server's keys do.

// recordKeys are the signing key of the records.
type recordKeys struct {
	private ed25519.PrivateKey
	public  ed25519.PublicKey
}

func newRecordKeys(signer *auth.Signer) recordKeys {
	priv := ed25519.NewKeyFromSeed(signer.Derive("hearing records")[:ed25519.SeedSize])
	return recordKeys{private: priv, public: priv.Public().(ed25519.PublicKey)}
}

// PublicKey is the record key, base64 (standard encoding).
func (s *Service) PublicKey() string { return base64.StdEncoding.EncodeToString(s.keys.public) }

// Record is what is signed.
type Record struct {
	Hearing     string         `json:"hearing"`
	Petition    string         `json:"petition"`
	Subject     string         `json:"subject"`
	OrgID       orgs.ID        `json:"org_id"`
	OfficerID   string         `json:"officer_id"`
	Others      []Other        `json:"others"`
	StartsAt    time.Time      `json:"starts_at"`
	ConsentAt   *time.Time     `json:"consent_at,omitempty"`
	AdmittedAt  *time.Time     `json:"admitted_at,omitempty"`
	EndedAt     *time.Time     `json:"ended_at,omitempty"`
	Outcome     string         `json:"outcome"`
	OutcomeNote string         `json:"outcome_note,omitempty"`
	Notes       []Note         `json:"notes"`
	Recordings  []RecordedFile `json:"recordings"`
	SignedAt    time.Time      `json:"signed_at"`
}

// RecordedFile is a recording as the record holds it.
type RecordedFile struct {
	ID         string  `json:"id"`
	Identity   string  `json:"identity"`
	Source     string  `json:"source"`
	Codec      string  `json:"codec"`
	State      string  `json:"state"`
	Bytes      int64   `json:"bytes"`
	SHA256     string  `json:"sha256"`
	DurationMS int64   `json:"duration_ms"`
	Pauses     []Pause `json:"pauses"`
}

// SignedRecord is a hearing's record with its signature.
type SignedRecord struct {
	Record    json.RawMessage `json:"record"`
	Signature string          `json:"signature"`  // Ed25519, base64
	PublicKey string          `json:"public_key"` // base64
	// Valid says the signature matches the record now.
	Valid bool `json:"valid"`
}

// ErrNotSigned: the hearing has not ended, so it has no record yet.
var ErrNotSigned = errclass.New(errclass.NotFound, "record_not_signed", "the hearing has no signed record yet: it has not ended")

// sign writes and signs the ended hearing's record.
func (s *Service) sign(ctx context.Context, scope orgs.Scope, id string) error {
	h, err := s.Get(ctx, scope, id)
	if err != nil {
		return err
	}
	pet, err := s.p.Petitions.Get(ctx, scope, h.PetitionID, false)
	if err != nil {
		return err
	}
	rec := Record{Hearing: h.ID, Petition: h.PetitionID, Subject: pet.Subject, OrgID: h.OrgID, OfficerID: h.OfficerID, Others: h.Others,
		StartsAt: h.StartsAt, ConsentAt: h.ConsentAt, AdmittedAt: h.AdmittedAt, EndedAt: h.EndedAt, Outcome: h.Outcome, OutcomeNote: h.OutcomeNote,
		Notes: h.Notes, Recordings: []RecordedFile{}, SignedAt: s.now().UTC().Truncate(time.Millisecond)}
	for _, r := range h.Recordings {
		rec.Recordings = append(rec.Recordings, RecordedFile{ID: r.ID, Identity: r.Identity, Source: r.Source, Codec: r.Codec, State: r.State,
			Bytes: r.Bytes, SHA256: r.SHA256, DurationMS: r.DurationMS, Pauses: r.Pauses})
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(s.keys.private, body))
	res, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET record = ?, signature = ? WHERE id = ? AND signature = ''`, string(body), sig, id)
	if err != nil {
		return fmt.Errorf("sign hearing record: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrInvalidState
	}
	return nil
}

// SignedRecord returns an ended hearing's record in scope, with its
// signature checked.
func (s *Service) SignedRecord(ctx context.Context, scope orgs.Scope, id string) (SignedRecord, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return SignedRecord{}, err
	}
	if r.State == StateEnded && !r.Signed {
		// Its end could not sign it (the database failed after the
		// state was stored): signed now.
		if err := s.sign(ctx, scope, id); err != nil && !errors.Is(err, ErrInvalidState) {
			return SignedRecord{}, err
		}
	}
	var body, sig string
	if err := s.p.DB.QueryRowContext(ctx, `SELECT record, signature FROM hearings WHERE id = ?`, id).Scan(&body, &sig); err != nil {
		return SignedRecord{}, err
	}
	if sig == "" {
		return SignedRecord{}, ErrNotSigned
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	valid := err == nil && ed25519.Verify(s.keys.public, []byte(body), raw)
	return SignedRecord{Record: json.RawMessage(body), Signature: sig, PublicKey: s.PublicKey(), Valid: valid}, nil
}
