package devices

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

func TestPresenceStaleAndBack(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := NewPresence(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_763_800_000, 0)
	p.now = func() time.Time { return now }
	var changes []string
	p.OnChange = func(id ID, state string, _ time.Time) { changes = append(changes, string(id)+":"+state) }
	kinds := map[ID]string{"lamp": "streetlight", "gauge": "water_level"}
	kindOf := func(id ID) (string, bool) { k, ok := kinds[id]; return k, ok }

	p.Set(ctx, "lamp", StateOnline)
	p.Set(ctx, "gauge", StateOnline)
	p.Set(ctx, "gauge", StateOnline) // a repeat changes nothing
	now = now.Add(9 * time.Minute)
	p.Seen(ctx, "gauge")
	p.Sweep(ctx, kindOf)
	if st, _ := p.Get("lamp"); st != StateOnline {
		t.Fatalf("lamp after 9 min: %s", st)
	}
	now = now.Add(2 * time.Minute) // lamp silent 11 min (limit 10), gauge 2 min
	p.Sweep(ctx, kindOf)
	if st, _ := p.Get("lamp"); st != StateStale {
		t.Fatalf("lamp after 11 min: %s", st)
	}
	if st, _ := p.Get("gauge"); st != StateOnline {
		t.Fatalf("gauge: %s", st)
	}
	p.Seen(ctx, "lamp")
	if st, _ := p.Get("lamp"); st != StateOnline {
		t.Fatalf("lamp speaking again: %s", st)
	}
	want := []string{"lamp:online", "gauge:online", "lamp:stale", "lamp:online"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
	// The history is kept with its time, and the state survives a restart.
	var n int
	db.QueryRow(`SELECT count(*) FROM presence WHERE device_id = 'lamp'`).Scan(&n)
	if n != 3 {
		t.Fatalf("lamp history has %d rows", n)
	}
	p2, _ := NewPresence(ctx, db)
	if st, _ := p2.Get("lamp"); st != StateOnline {
		t.Fatalf("after reload: %s", st)
	}
}
