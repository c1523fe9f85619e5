// Package spool keeps the points the time-series store could not take, on
// disk, in the order they came, until the store answers again. It is
// bounded in bytes: only past the bound are the oldest points dropped, and
// the caller is told how many.
//
// The spool is a directory of segment files. Each Append is one record
// (length, CRC-32C, points) written and synced at the end of the newest
// segment. Replay hands records back oldest first and deletes a segment once
// all its records were taken; a segment is replayed whole again after a
// failure or a crash, which the store's idempotent writes make harmless.
package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// SegmentBytes is the size at which a segment is closed and a new one
// begun; it bounds the work a replay repeats after a failure.
const SegmentBytes = 1 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Spool is safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64

	mu     sync.Mutex
	segs   []*segment // oldest first; the last is open for appends
	cur    *os.File
	bytes  int64
	points int64
	nextID uint64
}

type segment struct {
	id     uint64
	bytes  int64
	points int64
}

func (s *Spool) path(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016d.seg", id))
}

// Open opens (creating) the spool in dir, bounded to maxBytes, and takes
// stock of the segments a previous run left. A torn record at the end of a
// segment (a crash mid-write) is cut off.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, nextID: 1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		seg, err := s.scan(id)
		if err != nil {
			return nil, err
		}
		if seg.points == 0 {
			os.Remove(s.path(id))
			continue
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.bytes
		s.points += seg.points
		s.nextID = id + 1
	}
	return s, nil
}

// scan counts a segment's good records and cuts off a torn tail.
func (s *Spool) scan(id uint64) (*segment, error) {
	f, err := os.OpenFile(s.path(id), os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seg := &segment{id: id}
	r := bufio.NewReader(f)
	for {
		n, payload, err := readRecord(r)
		if err != nil {
			break
		}
		count, err := countPoints(payload)
		if err != nil {
			break
		}
		seg.bytes += n
		seg.points += count
	}
	if err := f.Truncate(seg.bytes); err != nil {
		return nil, err
	}
	return seg, nil
}

// Bytes and Points say how much waits in the spool.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Points is how many points wait in the spool.
func (s *Spool) Points() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}

// Append writes points as one record and syncs it. When the spool is over
// its bound it drops the oldest segments and returns how many points they
// held.
func (s *Spool) Append(points []tsdb.Point) (dropped int64, err error) {
	if len(points) == 0 {
		return 0, nil
	}
	rec := encodeRecord(points)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.segs[len(s.segs)-1].bytes >= SegmentBytes {
		if err := s.rotateLocked(); err != nil {
			return 0, err
		}
	}
	if _, err := s.cur.Write(rec); err != nil {
		return 0, fmt.Errorf("spool write: %w", err)
	}
	if err := s.cur.Sync(); err != nil {
		return 0, fmt.Errorf("spool sync: %w", err)
	}
	last := s.segs[len(s.segs)-1]
	last.bytes += int64(len(rec))
	last.points += int64(len(points))
	s.bytes += int64(len(rec))
	s.points += int64(len(points))
	for s.bytes > s.maxBytes && len(s.segs) > 1 {
		old := s.segs[0]
		if err := os.Remove(s.path(old.id)); err != nil {
			return dropped, err
		}
		s.segs = s.segs[1:]
		s.bytes -= old.bytes
		s.points -= old.points
		dropped += old.points
	}
	return dropped, nil
}

func (s *Spool) rotateLocked() error {
	if s.cur != nil {
		if err := s.cur.Close(); err != nil {
			return err
		}
		s.cur = nil
	}
	id := s.nextID
	f, err := os.OpenFile(s.path(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool segment: %w", err)
	}
	s.nextID++
	s.cur = f
	s.segs = append(s.segs, &segment{id: id})
	return nil
}

// ReplayOldest hands the records of the oldest segment to write, in order.
// When every record was written the segment is deleted and ReplayOldest
// returns true; when write fails it stops, keeps the segment and returns
// the error. An empty spool returns false, nil.
func (s *Spool) ReplayOldest(write func([]tsdb.Point) error) (bool, error) {
	s.mu.Lock()
	if len(s.segs) == 0 {
		s.mu.Unlock()
		return false, nil
	}
	seg := s.segs[0]
	if len(s.segs) == 1 && s.cur != nil {
		// The oldest is the open one: close it, so appends meanwhile go to
		// a new segment and this one stays as read.
		if err := s.cur.Close(); err != nil {
			s.mu.Unlock()
			return false, err
		}
		s.cur = nil
	}
	s.mu.Unlock()

	f, err := os.Open(s.path(seg.id))
	if err != nil {
		return false, err
	}
	r := bufio.NewReader(f)
	for {
		_, payload, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return false, fmt.Errorf("spool segment %d: %w", seg.id, err)
		}
		points, err := decodePoints(payload)
		if err != nil {
			f.Close()
			return false, fmt.Errorf("spool segment %d: %w", seg.id, err)
		}
		if err := write(points); err != nil {
			f.Close()
			return false, err
		}
	}
	f.Close()

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0] != seg {
		return true, nil // dropped for the bound meanwhile
	}
	if err := os.Remove(s.path(seg.id)); err != nil {
		return false, err
	}
	s.segs = s.segs[1:]
	s.bytes -= seg.bytes
	s.points -= seg.points
	return true, nil
}

// Close closes the open segment; what is spooled stays for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

// Record: u32 payload length, u32 CRC-32C of the payload, payload.
// Payload: u32 count, then per point: u16+device, u16+metric, i64 ts,
// u8 kind (0 number, 1 text), then f64 value or u16+text.

func encodeRecord(points []tsdb.Point) []byte {
	size := 12
	for _, p := range points {
		size += 2 + len(p.Device) + 2 + len(p.Metric) + 8 + 1 + 8 + len(p.Text)
	}
	b := make([]byte, 8, size)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(points)))
	str := func(s string) {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	for _, p := range points {
		str(p.Device)
		str(p.Metric)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.TS))
		if p.IsText {
			b = append(b, 1)
			str(p.Text)
		} else {
			b = append(b, 0)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
		}
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)-8))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crcTable))
	return b
}

var errCorrupt = errors.New("corrupt record")

// readRecord returns a record's size on disk and its checked payload.
func readRecord(r *bufio.Reader) (int64, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, errCorrupt
		}
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	if n > 64<<20 {
		return 0, nil, errCorrupt
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, errCorrupt
	}
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
		return 0, nil, errCorrupt
	}
	return int64(8 + n), payload, nil
}

func countPoints(payload []byte) (int64, error) {
	if len(payload) < 4 {
		return 0, errCorrupt
	}
	return int64(binary.LittleEndian.Uint32(payload)), nil
}

func decodePoints(b []byte) ([]tsdb.Point, error) {
	if len(b) < 4 {
		return nil, errCorrupt
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, errCorrupt
	}
	out := make([]tsdb.Point, 0, n)
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		l := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+l {
			return "", false
		}
		s := string(b[2 : 2+l])
		b = b[2+l:]
		return s, true
	}
	for i := uint32(0); i < n; i++ {
		var p tsdb.Point
		var ok bool
		if p.Device, ok = str(); !ok {
			return nil, errCorrupt
		}
		if p.Metric, ok = str(); !ok || len(b) < 9 {
			return nil, errCorrupt
		}
		p.TS = int64(binary.LittleEndian.Uint64(b))
		kind := b[8]
		b = b[9:]
		switch kind {
		case 0:
			if len(b) < 8 {
				return nil, errCorrupt
			}
			p.Value = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case 1:
			if p.Text, ok = str(); !ok {
				return nil, errCorrupt
			}
			p.IsText = true
		default:
			return nil, errCorrupt
		}
		out = append(out, p)
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}
