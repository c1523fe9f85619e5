package clips

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Errors of the store.
var (
	// ErrNoBuffer: the camera has no pre-alert buffer (it is pulled on
	// demand, or cameras.prebuffer is 0, or it is not pulled yet).
	ErrNoBuffer = errclass.New(errclass.Conflict, "no_prebuffer",
		"the camera keeps no pre-alert buffer: only cameras pulled always (mode always) do, when cameras.prebuffer is not 0")
	// ErrInvalidNote: a clip's note is too long.
	ErrInvalidNote = errclass.Invalidf("note", "must be at most %d characters", maxNote)
	// ErrNotFound: no such clip.
	ErrNotFound = errclass.New(errclass.NotFound, "clip_not_found", "clip not found")
)

// maxNote bounds a clip's note, in characters.
const maxNote = 500

// concurrentWrites bounds the clips written at once: each copies its span
// out of the buffer (up to its MaxBytes) before writing it.
const concurrentWrites = 2

// Buffers finds a camera's buffer: nil when it keeps none.
type Buffers interface {
	Buffer(camera string) *Buffer
}

// StoreParams configure a Store.
type StoreParams struct {
	DB *sql.DB
	// Dir holds the files, one directory per camera: Dir/{camera}/{id}.mp4.
	Dir     string
	Buffers Buffers
	// Now is the clock of created_at (default time.Now).
	Now func() time.Time
}

// Clip is a saved span of a camera's video.
type Clip struct {
	ID       string  `json:"id"`
	CameraID string  `json:"camera_id"`
	OrgID    orgs.ID `json:"org_id"`
	// From and To are the receive times of the first frame (a keyframe,
	// at or before the from asked for) and the last.
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	DurationMS int64     `json:"duration_ms"`
	Bytes      int64     `json:"bytes"`
	Codec      string    `json:"codec"`
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Note       string    `json:"note,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
}

// Request asks for a clip of one camera.
type Request struct {
	Camera string
	// Org is the camera's organisation, which the clip keeps (and is
	// scoped by) after the camera changes or goes.
	Org      orgs.ID
	From, To time.Time
	Note     string
	// Actor is who asks: a user id, or the component (e.g. "alerts").
	Actor string
}

// Store writes clips out of the cameras' buffers into files and keeps
// their index in the clips table.
type Store struct {
	p   StoreParams
	sem chan struct{}
}

// NewStore opens the store; the directory is made when the first clip is.
func NewStore(p StoreParams) (*Store, error) {
	if p.DB == nil || p.Dir == "" || p.Buffers == nil {
		return nil, errors.New("clips: DB, Dir and Buffers are required")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Store{p: p, sem: make(chan struct{}, concurrentWrites)}, nil
}

// idPattern is the shape of clip ids: they go into file names.
var idPattern = regexp.MustCompile(`^clp_[0-9a-f]{20}$`)

// cameraPattern is the shape of camera ids (orgs.IDPattern): they go into
// directory names.
var cameraPattern = orgs.IDPattern

func newID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "clp_" + hex.EncodeToString(b)
}

// Path is where a clip's file is.
func (s *Store) Path(c Clip) string {
	return filepath.Join(s.p.Dir, c.CameraID, c.ID+".mp4")
}

// Create writes the span of r's camera as an MP4 file and indexes it. It
// waits while other clips are written (at most a few at once), unless ctx
// ends. Errors: ErrNoBuffer, ErrNothingBuffered, ErrSpanNotBuffered (saying
// what the buffer holds), ErrInvalidSpan, ErrInvalidNote.
func (s *Store) Create(ctx context.Context, r Request) (Clip, error) {
	if utf8.RuneCountInString(r.Note) > maxNote {
		return Clip{}, ErrInvalidNote
	}
	if !cameraPattern.MatchString(r.Camera) {
		return Clip{}, ErrNoBuffer
	}
	buf := s.p.Buffers.Buffer(r.Camera)
	if buf == nil {
		return Clip{}, ErrNoBuffer
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return Clip{}, ctx.Err()
	}
	seg, err := buf.Snapshot(r.From, r.To)
	if err != nil {
		return Clip{}, err
	}
	c := Clip{ID: newID(), CameraID: r.Camera, OrgID: r.Org, Codec: seg.Codec, Note: r.Note, CreatedBy: r.Actor, CreatedAt: s.p.Now()}
	span := seg.Span()
	c.From, c.To = span.From, span.To
	info, err := s.write(c, seg)
	seg = nil // the copy is written: let it go before the insert
	if err != nil {
		return Clip{}, err
	}
	c.DurationMS, c.Bytes, c.Width, c.Height = info.Duration.Milliseconds(), info.Bytes, info.Width, info.Height
	_, err = s.p.DB.ExecContext(ctx, `INSERT INTO clips (id, camera_id, org_id, from_ms, to_ms, duration_ms, bytes, codec, width, height, note, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.CameraID, string(c.OrgID), c.From.UnixMilli(), c.To.UnixMilli(), c.DurationMS, c.Bytes, c.Codec, c.Width, c.Height,
		c.Note, c.CreatedBy, c.CreatedAt.UnixMilli())
	if err != nil {
		_ = os.Remove(s.Path(c))
		return Clip{}, fmt.Errorf("index clip: %w", err)
	}
	// As the index keeps them, to the millisecond.
	c.From, c.To, c.CreatedAt = time.UnixMilli(c.From.UnixMilli()), time.UnixMilli(c.To.UnixMilli()), time.UnixMilli(c.CreatedAt.UnixMilli())
	return c, nil
}

// write puts the segment into the clip's file, whole or not at all: it is
// written beside it, synced, and renamed into place.
func (s *Store) write(c Clip, seg *Segment) (MP4Info, error) {
	dir := filepath.Dir(s.Path(c))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return MP4Info{}, fmt.Errorf("clips dir: %w", err)
	}
	f, err := os.CreateTemp(dir, c.ID+".*.part")
	if err != nil {
		return MP4Info{}, fmt.Errorf("clip file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (MP4Info, error) {
		f.Close()
		os.Remove(tmp)
		return MP4Info{}, err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	info, err := seg.WriteMP4(w)
	if err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return MP4Info{}, fmt.Errorf("write clip: %w", err)
	}
	if err := os.Rename(tmp, s.Path(c)); err != nil {
		os.Remove(tmp)
		return MP4Info{}, fmt.Errorf("write clip: %w", err)
	}
	return info, nil
}

const clipColumns = `id, camera_id, org_id, from_ms, to_ms, duration_ms, bytes, codec, width, height, note, created_by, created_at`

func scanClip(row interface{ Scan(...any) error }) (Clip, error) {
	var c Clip
	var org string
	var from, to, created int64
	if err := row.Scan(&c.ID, &c.CameraID, &org, &from, &to, &c.DurationMS, &c.Bytes, &c.Codec, &c.Width, &c.Height, &c.Note, &c.CreatedBy, &created); err != nil {
		return Clip{}, err
	}
	c.OrgID = orgs.ID(org)
	c.From, c.To, c.CreatedAt = time.UnixMilli(from), time.UnixMilli(to), time.UnixMilli(created)
	return c, nil
}

// Get returns a clip by id (ErrNotFound when there is none).
func (s *Store) Get(ctx context.Context, id string) (Clip, error) {
	if !idPattern.MatchString(id) {
		return Clip{}, ErrNotFound
	}
	c, err := scanClip(s.p.DB.QueryRowContext(ctx, `SELECT `+clipColumns+` FROM clips WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Clip{}, ErrNotFound
	}
	return c, err
}

// List returns a camera's clips, newest first, at most limit.
func (s *Store) List(ctx context.Context, camera string, limit int) ([]Clip, error) {
	rows, err := s.p.DB.QueryContext(ctx, `SELECT `+clipColumns+` FROM clips WHERE camera_id = ? ORDER BY from_ms DESC, id LIMIT ?`, camera, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Clip{}
	for rows.Next() {
		c, err := scanClip(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Open opens a clip's file for reading.
func (s *Store) Open(c Clip) (*os.File, error) {
	return os.Open(s.Path(c))
}
