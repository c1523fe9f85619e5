package clips

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

type buffers map[string]*Buffer

func (b buffers) Buffer(camera string) *Buffer { return b[camera] }

func TestStore(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	db, err := sqldb.Open(ctx, dataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := newSynth(t, Params{Duration: 10 * time.Second}, 25, 25, 2000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(200) // 8 s
	st, err := NewStore(StoreParams{DB: db, Dir: filepath.Join(dataDir, "clips"), Buffers: buffers{"dam": s.b},
		Now: func() time.Time { return s.now }})
	if err != nil {
		t.Fatal(err)
	}

	c, err := st.Create(ctx, Request{Camera: "dam", Org: "qj", From: s.frameAt(110), To: s.frameAt(185), Note: "坝前 水位上涨", Actor: "op"})
	if err != nil {
		t.Fatal(err)
	}
	// From the keyframe 100 to frame 185: 86 frames of 40 ms.
	if !idPattern.MatchString(c.ID) || c.CameraID != "dam" || c.OrgID != "qj" || !c.From.Equal(s.frameAt(100)) || !c.To.Equal(s.frameAt(185)) ||
		c.DurationMS != 86*40 || c.Codec != H264 || c.Width != 1920 || c.Height != 1080 || c.Note != "坝前 水位上涨" || c.CreatedBy != "op" {
		t.Fatalf("clip %+v", c)
	}
	data, err := os.ReadFile(filepath.Join(dataDir, "clips", "dam", c.ID+".mp4"))
	if err != nil || int64(len(data)) != c.Bytes || string(data[4:8]) != "ftyp" {
		t.Fatalf("file: %v, %d bytes of %d", err, len(data), c.Bytes)
	}
	got, err := st.Get(ctx, c.ID)
	if err != nil || got != c {
		t.Fatalf("get: %v\n%+v\n%+v", err, got, c)
	}
	f, err := st.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Several at once.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := st.Create(ctx, Request{Camera: "dam", Org: "qj", From: s.frameAt(150 + i), To: s.frameAt(199), Actor: "op"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := st.List(ctx, "dam", 100)
	if err != nil || len(list) != 5 || list[0].From.Before(list[4].From) || list[4] != c {
		t.Fatalf("list: %v %+v", err, list)
	}
	if list, _ := st.List(ctx, "dam", 2); len(list) != 2 {
		t.Fatalf("limit: %d", len(list))
	}
	if list, _ := st.List(ctx, "gate", 100); list == nil || len(list) != 0 {
		t.Fatalf("another camera: %+v", list)
	}

	for _, tc := range []struct {
		name string
		r    Request
		want error
	}{
		{"no buffer", Request{Camera: "gate", From: s.frameAt(150), To: s.frameAt(160)}, ErrNoBuffer},
		{"bad camera id", Request{Camera: "../dam", From: s.frameAt(150), To: s.frameAt(160)}, ErrNoBuffer},
		{"long note", Request{Camera: "dam", From: s.frameAt(150), To: s.frameAt(160), Note: strings.Repeat("水", 501)}, ErrInvalidNote},
		{"before the buffer", Request{Camera: "dam", From: s.frameAt(0).Add(-time.Hour), To: s.frameAt(160)}, ErrSpanNotBuffered},
		{"backwards", Request{Camera: "dam", From: s.frameAt(160), To: s.frameAt(150)}, ErrInvalidSpan},
	} {
		if _, err := st.Create(ctx, tc.r); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, id := range []string{"clp_00000000000000000000", "nope", "../../lookout.db"} {
		if _, err := st.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %q: %v", id, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dataDir, "clips", "dam", "*"))
	if len(files) != 5 {
		t.Fatalf("files: %v", files)
	}
}
