package hearings

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/orgs/orgstest"
	"github.com/lookout-cc/lookout/sfu/rooms"
)

type memAudit struct {
	mu      sync.Mutex
	entries []string
}

func (a *memAudit) Record(_ context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, strings.Join([]string{actor, string(org), action, target, result}, " "))
	return nil
}

type env struct {
	ctx   context.Context
	db    *sql.DB
	svc   *Service
	tree  *orgs.Store
	dir   string
	audit *memAudit
	now   time.Time
}

// newEnv is the hearings of orgstest's tree over a real SQLite database,
// without an SFU, on a clock the test moves.
func newEnv(t *testing.T) *env {
	t.Helper()
	db, tree, dir := orgstest.Tree(t)
	seal, err := petitions.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigner(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ctx: context.Background(), db: db, tree: tree, dir: filepath.Join(dir, "recordings"), audit: &memAudit{},
		now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	e.svc, err = New(Params{DB: db, Tree: tree, Petitions: petitions.NewStore(db, tree, seal, nil), Rooms: rooms.NewStore(db, tree), Signer: signer,
		RecordingsDir: e.dir, Retention: 90 * 24 * time.Hour, Audit: e.audit, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) scope(t *testing.T, id orgs.ID) orgs.Scope {
	t.Helper()
	s, err := e.tree.ScopeOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// heard schedules a hearing of a new petition in qj and marks it
// admitted, as the SFU's admission does.
func (e *env) heard(t *testing.T) Hearing {
	t.Helper()
	qj := e.scope(t, "qj")
	p, err := e.svc.p.Petitions.Create(e.ctx, qj, "qj-ho", petitions.NewPetition{Subject: "安置房漏水", Description: "屋顶漏水。",
		Petitioner: petitions.Petitioner{Name: "张三丰", Phone: "13812345678", IDNumber: "11010519491231002X"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.svc.Schedule(e.ctx, qj, "qj-ho", p.ID, NewHearing{StartsAt: e.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE hearings SET state = ?, admitted_at = ? WHERE id = ?`, StateInProgress, ms(e.now), h.ID); err != nil {
		t.Fatal(err)
	}
	return h
}

// addRecording writes a finished recording of h: its file and its row.
func (e *env) addRecording(t *testing.T, h Hearing, id, state string, content []byte) string {
	t.Helper()
	file := h.ID + "/" + id + "-resident-camera.webm"
	path := filepath.Join(e.dir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	disk := path
	if state == RecordingActive {
		disk += ".part" // as the recorder leaves it until finished
	}
	if err := os.WriteFile(disk, content, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if _, err := e.db.Exec(`INSERT INTO hearing_recordings(id, hearing_id, identity, name, role, source, kind, codec, file, state, bytes, sha256, started_at)
		VALUES (?, ?, 'resident', '信访人', 'resident', 'camera', 'video', 'vp8', ?, ?, ?, ?, ?)`, id, h.ID, file, state, len(content), hex.EncodeToString(sum[:]), ms(e.now)); err != nil {
		t.Fatal(err)
	}
	return path
}

// At the end the record is signed with what happened and each recording's
// checksum; changing the stored record breaks the signature; a note
// cannot be added to a signed record.
func TestSignedRecord(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	h := e.heard(t)
	e.addRecording(t, h, "rec_1", RecordingComplete, []byte("webm bytes"))
	if _, err := e.svc.AddNote(e.ctx, qj, h.ID, "qj-ho", "居民陈述漏水情况"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SignedRecord(e.ctx, qj, h.ID); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("a record before the end: %v", err)
	}
	if _, err := e.svc.End(e.ctx, qj, h.ID, "qj-ho", Ending{Outcome: "maybe"}); err == nil || !strings.Contains(err.Error(), "outcome") {
		t.Fatalf("a bad outcome: %v", err)
	}
	ended, err := e.svc.End(e.ctx, qj, h.ID, "qj-ho", Ending{Outcome: OutcomeResolved, Note: "当场答复"})
	if err != nil {
		t.Fatal(err)
	}
	if ended.State != StateEnded || !ended.Signed || ended.Link.Active {
		t.Fatalf("ended: %+v", ended)
	}
	rec, err := e.svc.SignedRecord(e.ctx, qj, h.ID)
	if err != nil || !rec.Valid || !strings.Contains(string(rec.Record), `"sha256":"`) || !strings.Contains(string(rec.Record), "居民陈述漏水情况") {
		t.Fatalf("record: %v %+v", err, rec)
	}
	if _, err := e.svc.AddNote(e.ctx, qj, h.ID, "qj-ho", "事后补记"); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("a note after signing: %v", err)
	}
	if _, err := e.svc.End(e.ctx, qj, h.ID, "qj-ho", Ending{Outcome: OutcomeResolved}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("ended twice: %v", err)
	}
	// An end whose signing failed is signed at the record's next read.
	if _, err := e.db.Exec(`UPDATE hearings SET record = '', signature = '' WHERE id = ?`, h.ID); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.svc.SignedRecord(e.ctx, qj, h.ID); err != nil || !rec.Valid {
		t.Fatalf("signed late: %v %+v", err, rec)
	}
	if _, err := e.db.Exec(`UPDATE hearings SET record = replace(record, 'resolved', 'referred') WHERE id = ?`, h.ID); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.svc.SignedRecord(e.ctx, qj, h.ID); err != nil || rec.Valid {
		t.Fatalf("a changed record still valid: %v %+v", err, rec)
	}
	if _, err := e.svc.SignedRecord(e.ctx, e.scope(t, "ys"), h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another county read the record: %v", err)
	}
}

// Recordings the server left unfinished are marked interrupted at the
// next start, with the size and checksum of what was written; recordings
// past their retention are deleted by the sweep, each audited, their rows
// kept; a deleted recording cannot be opened.
func TestRecoverAndRetention(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	h := e.heard(t)
	e.addRecording(t, h, "rec_left", RecordingActive, []byte("half a file"))
	if err := e.svc.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(e.ctx, qj, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("half a file"))
	if r := got.Recordings[0]; r.State != RecordingInterrupted || r.Bytes != 11 || r.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("recovered: %+v", r)
	}
	_, _, f, err := e.svc.RecordingFile(e.ctx, qj, h.ID, "rec_left")
	if err != nil {
		t.Fatal("the interrupted recording cannot be played: ", err)
	}
	f.Close()

	done := e.addRecording(t, h, "rec_done", RecordingComplete, []byte("a whole file"))
	if _, err := e.svc.End(e.ctx, qj, h.ID, "qj-ho", Ending{Outcome: OutcomeFollowUp}); err != nil {
		t.Fatal(err)
	}
	other := e.heard(t)
	kept := e.addRecording(t, other, "rec_kept", RecordingComplete, []byte("kept"))

	e.now = e.now.Add(60 * 24 * time.Hour)
	if _, err := e.svc.End(e.ctx, qj, other.ID, "qj-ho", Ending{Outcome: OutcomeResolved}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("a sweep within the retention: %d %v", n, err)
	}
	e.now = e.now.Add(31 * 24 * time.Hour) // the first hearing ended 91 days ago
	if n, err := e.svc.Sweep(e.ctx); err != nil || n != 2 {
		t.Fatalf("the sweep: %d %v", n, err)
	}
	if _, err := os.Stat(done); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the expired file is still there: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("a recording within its retention was deleted: %v", err)
	}
	got, _ = e.svc.Get(e.ctx, qj, h.ID)
	for _, r := range got.Recordings {
		if r.State != RecordingDeleted || r.DeletedBy != SweepActor || r.DeletedAt == nil {
			t.Fatalf("swept: %+v", r)
		}
	}
	if _, _, _, err := e.svc.RecordingFile(e.ctx, qj, h.ID, "rec_done"); !errors.Is(err, ErrRecordingNotFound) {
		t.Fatalf("a deleted recording opened: %v", err)
	}
	e.audit.mu.Lock()
	entries := strings.Join(e.audit.entries, "\n")
	e.audit.mu.Unlock()
	for _, want := range []string{SweepActor + " qj hearing.recording_delete " + h.ID + " ok"} {
		if strings.Count(entries, want) != 2 {
			t.Fatalf("the audit lacks two %q:\n%s", want, entries)
		}
	}
	// By hand: the administrator deletes the kept one.
	if _, _, err := e.svc.DeleteRecording(e.ctx, qj, other.ID, "rec_kept", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.DeleteRecording(e.ctx, qj, other.ID, "rec_kept", "admin"); !errors.Is(err, ErrRecordingNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}
}
