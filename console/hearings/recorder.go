package hearings

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/record"
)

// Recording states.
const (
	RecordingActive   = "recording"
	RecordingComplete = "complete"
	// RecordingInterrupted: the server stopped before the file was
	// finished (its .part is kept, and plays up to there).
	RecordingInterrupted = "interrupted"
	RecordingFailed      = "failed"
	// RecordingEmpty: the source published, but nothing recordable came
	// (no packet, or video without a keyframe); there is no file.
	RecordingEmpty   = "empty"
	RecordingDeleted = "deleted"
)

// Pause is a stretch of a recording without media: the participant muted,
// their network dropped, they reconnected.
type Pause struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Recording is one participant source's file of a hearing.
type Recording struct {
	ID         string     `json:"id"`
	Identity   string     `json:"identity"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Source     string     `json:"source"`
	Kind       string     `json:"kind"`
	Codec      string     `json:"codec"`
	State      string     `json:"state"`
	Bytes      int64      `json:"bytes"`
	SHA256     string     `json:"sha256,omitempty"`
	DurationMS int64      `json:"duration_ms"`
	Pauses     []Pause    `json:"pauses"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	DeletedBy  string     `json:"deleted_by,omitempty"`
	DeletedAt  *time.Time `json:"deleted_at,omitempty"`
	file       string
}

// ErrRecordingNotFound: no such recording of the hearing (or it was
// deleted).
var ErrRecordingNotFound = errclass.New(errclass.NotFound, "recording_not_found", "recording not found")

// recorder records one hearing: a file per participant source
// (meeting.Recorder).
type recorder struct {
	s       *Service
	hearing string
}

// sink is one source's file.
type sink struct {
	s     *Service
	id    string
	file  string // relative to the recordings directory
	track *record.Track
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_-]+`)

func (rc *recorder) Open(src meeting.RecordedSource) (meeting.TrackSink, error) {
	ext, err := record.Ext(src.MimeType)
	if err != nil {
		return nil, err
	}
	id := newID("rec_")
	who := unsafeName.ReplaceAllString(strings.ToLower(src.Identity), "_")
	name := id + "-" + who + "-" + src.Source
	t, err := record.Start(record.Params{Dir: filepath.Join(rc.s.p.RecordingsDir, rc.hearing), Name: name, MimeType: src.MimeType,
		ClockRate: src.ClockRate, RequestKeyframe: src.RequestKeyframe, Log: rc.s.log.With("hearing", rc.hearing, "source", src.Source)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rc.s.p.DB.ExecContext(ctx, `INSERT INTO hearing_recordings(id, hearing_id, identity, name, role, source, kind, codec, file, state, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, rc.hearing, src.Identity, src.Name, src.Role, src.Source, src.Kind,
		strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(src.MimeType, "video/"), "audio/")),
		filepath.ToSlash(filepath.Join(rc.hearing, name+ext)), RecordingActive, ms(rc.s.now())); err != nil {
		_, _ = t.Close()
		return nil, fmt.Errorf("hearing recording not stored: %w", err)
	}
	return &sink{s: rc.s, id: id, file: filepath.ToSlash(filepath.Join(rc.hearing, name+ext)), track: t}, nil
}

func (k *sink) WriteRTP(p *rtp.Packet) { k.track.WriteRTP(p) }

// Close finishes the file and keeps its summary.
func (k *sink) Close() {
	sum, err := k.track.Close()
	state := RecordingComplete
	switch {
	case errors.Is(err, record.ErrNoMedia):
		state = RecordingEmpty
	case err != nil:
		state = RecordingFailed
		k.s.log.Error("hearing recording failed", "recording", k.id, "err", err)
		// What was written stays in the .part: listed with its size and
		// checksum, playable, and deleted with the recording.
		if size, sum2, herr := hashFile(filepath.Join(k.s.p.RecordingsDir, filepath.FromSlash(k.file+".part"))); herr == nil {
			sum.Path = filepath.Join(k.s.p.RecordingsDir, filepath.FromSlash(k.file+".part"))
			sum.Bytes, sum.SHA256 = size, sum2
		}
	}
	pauses := make([]Pause, 0, len(sum.Pauses))
	for _, p := range sum.Pauses {
		pauses = append(pauses, Pause{From: p.From.UTC(), To: p.To.UTC()})
	}
	pj, _ := json.Marshal(pauses)
	ended := sum.Ended
	if ended.IsZero() {
		ended = k.s.now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := `UPDATE hearing_recordings SET state = ?, bytes = ?, sha256 = ?, duration_ms = ?, pauses = ?, ended_at = ?`
	args := []any{state, sum.Bytes, sum.SHA256, sum.Duration.Milliseconds(), string(pj), ms(ended)}
	if !sum.Started.IsZero() {
		q += `, started_at = ?`
		args = append(args, ms(sum.Started))
	}
	if sum.Path != "" {
		rel, err := filepath.Rel(k.s.p.RecordingsDir, sum.Path)
		if err == nil {
			q += `, file = ?`
			args = append(args, filepath.ToSlash(rel))
		}
	}
	if _, err := k.s.p.DB.ExecContext(ctx, q+` WHERE id = ?`, append(args, k.id)...); err != nil {
		k.s.log.Error("hearing recording's summary not stored", "recording", k.id, "err", err)
	}
}

// startRecording records the hearing's room, once.
func (s *Service) startRecording(r row) error {
	m := s.sfu()
	if m == nil {
		return errors.New("no SFU")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recorders[r.RoomID] != nil {
		return nil
	}
	// Read again under the lock: End sets the state before it stops the
	// recording, so a hearing that ended meanwhile is not recorded anew.
	var state string
	if err := s.p.DB.QueryRow(`SELECT state FROM hearings WHERE id = ?`, r.ID).Scan(&state); err != nil {
		return err
	}
	if state != StateInProgress {
		return nil
	}
	rc := &recorder{s: s, hearing: r.ID}
	if err := m.Record(r.RoomID, rc); err != nil && !errors.Is(err, meeting.ErrRecording) {
		return err
	}
	s.recorders[r.RoomID] = rc
	return nil
}

// stopRecording stops the room's recording; its files are finished when
// it returns.
func (s *Service) stopRecording(room string) {
	m := s.sfu()
	s.mu.Lock()
	delete(s.recorders, room)
	s.mu.Unlock()
	if m != nil {
		m.StopRecording(room)
	}
}

// Recover is run at start: recordings the server left unfinished (it
// stopped without ending their hearing) are marked interrupted, with the
// size and checksum of what was written.
func (s *Service) Recover(ctx context.Context) error {
	rows, err := s.p.DB.QueryContext(ctx, `SELECT id, file FROM hearing_recordings WHERE state = ?`, RecordingActive)
	if err != nil {
		return err
	}
	type left struct{ id, file string }
	var found []left
	for rows.Next() {
		var l left
		if err := rows.Scan(&l.id, &l.file); err != nil {
			rows.Close()
			return err
		}
		found = append(found, l)
	}
	rows.Close()
	for _, l := range found {
		file := l.file + ".part"
		size, sum, err := hashFile(filepath.Join(s.p.RecordingsDir, filepath.FromSlash(file)))
		if err != nil {
			file = l.file
		}
		if _, err := s.p.DB.ExecContext(ctx, `UPDATE hearing_recordings SET state = ?, file = ?, bytes = ?, sha256 = ?, ended_at = ? WHERE id = ?`,
			RecordingInterrupted, file, size, sum, ms(s.now()), l.id); err != nil {
			return err
		}
		s.log.Warn("hearing recording interrupted by a stop", "recording", l.id)
	}
	return nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

const recordingColumns = `id, identity, name, role, source, kind, codec, state, bytes, sha256, duration_ms, pauses, started_at, ended_at, deleted_by, deleted_at, file`

func scanRecording(sc interface{ Scan(...any) error }) (Recording, error) {
	var r Recording
	var pauses string
	var started, ended, deleted int64
	err := sc.Scan(&r.ID, &r.Identity, &r.Name, &r.Role, &r.Source, &r.Kind, &r.Codec, &r.State, &r.Bytes, &r.SHA256, &r.DurationMS, &pauses,
		&started, &ended, &r.DeletedBy, &deleted, &r.file)
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, ErrRecordingNotFound
	}
	if err != nil {
		return Recording{}, err
	}
	if err := json.Unmarshal([]byte(pauses), &r.Pauses); err != nil {
		return Recording{}, err
	}
	r.StartedAt, r.EndedAt, r.DeletedAt = fromMS(started), optMS(ended), optMS(deleted)
	return r, nil
}

func (s *Service) recordings(ctx context.Context, hearing string) ([]Recording, error) {
	rows, err := s.p.DB.QueryContext(ctx, `SELECT `+recordingColumns+` FROM hearing_recordings WHERE hearing_id = ? ORDER BY started_at, id`, hearing)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Recording{}
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RecordingFile opens a recording of a hearing in scope for playing.
func (s *Service) RecordingFile(ctx context.Context, scope orgs.Scope, hearing, id string) (Recording, orgs.ID, *os.File, error) {
	h, err := s.loadIn(ctx, scope, hearing)
	if err != nil {
		return Recording{}, "", nil, err
	}
	r, err := scanRecording(s.p.DB.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM hearing_recordings WHERE hearing_id = ? AND id = ?`, hearing, id))
	if err != nil {
		return Recording{}, "", nil, err
	}
	if r.State == RecordingDeleted || r.State == RecordingActive || r.State == RecordingEmpty {
		return Recording{}, "", nil, ErrRecordingNotFound
	}
	f, err := os.Open(filepath.Join(s.p.RecordingsDir, filepath.FromSlash(r.file)))
	if errors.Is(err, os.ErrNotExist) {
		s.log.Error("hearing recording's file is missing", "recording", id, "file", r.file)
		return Recording{}, "", nil, ErrRecordingNotFound
	}
	if err != nil {
		return Recording{}, "", nil, fmt.Errorf("recording %s: %w", id, err)
	}
	return r, h.OrgID, f, nil
}

// DeleteRecording deletes a recording's file; its row stays, marked
// deleted with who and when, so that the signed record still accounts
// for it.
func (s *Service) DeleteRecording(ctx context.Context, scope orgs.Scope, hearing, id, actor string) (Recording, orgs.ID, error) {
	h, err := s.loadIn(ctx, scope, hearing)
	if err != nil {
		return Recording{}, "", err
	}
	r, err := s.deleteRecording(ctx, hearing, id, actor)
	return r, h.OrgID, err
}

func (s *Service) deleteRecording(ctx context.Context, hearing, id, actor string) (Recording, error) {
	r, err := scanRecording(s.p.DB.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM hearing_recordings WHERE hearing_id = ? AND id = ?`, hearing, id))
	if err != nil {
		return Recording{}, err
	}
	if r.State == RecordingDeleted || r.State == RecordingEmpty {
		return Recording{}, ErrRecordingNotFound
	}
	if r.State == RecordingActive {
		return Recording{}, ErrInvalidState
	}
	// The file and what a stop or a failure may have left of it.
	path := filepath.Join(s.p.RecordingsDir, filepath.FromSlash(strings.TrimSuffix(r.file, ".part")))
	for _, p := range []string{path, path + ".part"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Recording{}, err
		}
	}
	now := s.now()
	if _, err := s.p.DB.ExecContext(ctx, `UPDATE hearing_recordings SET state = ?, deleted_by = ?, deleted_at = ? WHERE id = ?`,
		RecordingDeleted, actor, ms(now), id); err != nil {
		return Recording{}, err
	}
	r.State, r.DeletedBy, r.DeletedAt = RecordingDeleted, actor, &now
	return r, nil
}

// SweepActor is who the retention sweep's deletions are audited as.
const SweepActor = "system:retention"

// Sweep deletes the recordings of hearings that ended longer ago than the
// retention, each audited; it returns how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if s.p.Retention <= 0 {
		return 0, nil
	}
	cutoff := ms(s.now().Add(-s.p.Retention))
	rows, err := s.p.DB.QueryContext(ctx, `SELECT r.id, r.hearing_id, h.org_id FROM hearing_recordings r JOIN hearings h ON h.id = r.hearing_id
		WHERE r.state IN (?, ?, ?) AND h.ended_at != 0 AND h.ended_at < ?`, RecordingComplete, RecordingInterrupted, RecordingFailed, cutoff)
	if err != nil {
		return 0, err
	}
	type old struct {
		id, hearing string
		org         orgs.ID
	}
	var found []old
	for rows.Next() {
		var o old
		if err := rows.Scan(&o.id, &o.hearing, &o.org); err != nil {
			rows.Close()
			return 0, err
		}
		found = append(found, o)
	}
	rows.Close()
	n := 0
	var failed error
	for _, o := range found {
		r, err := s.deleteRecording(ctx, o.hearing, o.id, SweepActor)
		if err != nil {
			// One that cannot be deleted holds up none of the others;
			// it is tried again at the next sweep.
			s.log.Error("hearing recording past its retention not deleted", "recording", o.id, "err", err)
			failed = err
			continue
		}
		n++
		if s.p.Audit != nil {
			if err := s.p.Audit.Record(ctx, SweepActor, o.org, "hearing.recording_delete", o.hearing, "ok",
				map[string]any{"recording": r.ID, "sha256": r.SHA256, "reason": "retention"}); err != nil {
				return n, err
			}
		}
	}
	return n, failed
}
