package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
)

func TestPublishSubscribeOrder(t *testing.T) {
	clk := newClock(epoch0)
	b := NewBus(Params{Now: clk.Now})
	defer b.Close()
	s := b.Subscribe(nil, "")
	defer s.Close()
	if s.Gap || len(s.Missed) != 0 {
		t.Fatalf("new subscription: gap %v, missed %d", s.Gap, len(s.Missed))
	}

	const n = 200
	for i := 1; i <= n; i++ {
		ev, err := b.Publish(TypeAlert, "qj", payload{N: i})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != uint64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	for i := 1; i <= n; i++ {
		ev := recv(t, s)
		wantID := fmt.Sprintf("%d-%d", epoch0.UnixMilli(), i)
		wantAt := epoch0.Add(time.Duration(i) * time.Millisecond) // NewBus read the clock once
		if ev.ID != wantID || ev.Seq != uint64(i) || ev.Type != TypeAlert || ev.OrgID != "qj" || !ev.At.Equal(wantAt) {
			t.Fatalf("event %d: %s seq %d type %s org %s at %v; want %s at %v", i, ev.ID, ev.Seq, ev.Type, ev.OrgID, ev.At, wantID, wantAt)
		}
		if want := fmt.Sprintf(`{"n":%d}`, i); string(ev.Data) != want {
			t.Fatalf("event %d data %s, want %s", i, ev.Data, want)
		}
	}
	quiet(t, s)
}

func TestFilter(t *testing.T) {
	b := NewBus(Params{})
	defer b.Close()
	published := []struct {
		typ string
		org orgs.ID
	}{
		{TypeAlert, "qj"}, {TypeDevice, "ys"}, {TypeAlert, "ys"}, {TypeWall, "qj"}, {TypeCamera, "zt"},
	}
	tests := []struct {
		name  string
		allow func(Event) bool
		want  []uint64
	}{
		{"nil allows all", nil, []uint64{1, 2, 3, 4, 5}},
		{"one org", func(e Event) bool { return e.OrgID == "qj" }, []uint64{1, 4}},
		{"one type", func(e Event) bool { return e.Type == TypeAlert }, []uint64{1, 3}},
		{"nothing", func(Event) bool { return false }, nil},
	}
	subs := make([]*Subscription, len(tests))
	for i, tt := range tests {
		subs[i] = b.Subscribe(tt.allow, "")
		defer subs[i].Close()
	}
	for _, p := range published {
		if _, err := b.Publish(p.typ, p.org, payload{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for range tt.want {
				got = append(got, recv(t, subs[i]).Seq)
			}
			quiet(t, subs[i])
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			// Replay applies the same filter.
			r := b.Subscribe(tt.allow, formatID(b.epoch, 0))
			defer r.Close()
			if r.Gap || !slices.Equal(seqs(r.Missed), tt.want) {
				t.Fatalf("replay: gap %v, missed %v, want %v", r.Gap, seqs(r.Missed), tt.want)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	b := NewBus(Params{ReplaySize: 8, Now: newClock(epoch0).Now})
	defer b.Close()
	for i := range 5 {
		org := orgs.ID("qj")
		if i%2 == 1 {
			org = "ys"
		}
		if _, err := b.Publish(TypeDevice, org, payload{N: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	id := func(seq uint64) string { return formatID(b.epoch, seq) }
	qj := func(e Event) bool { return e.OrgID == "qj" }
	tests := []struct {
		name    string
		allow   func(Event) bool
		last    string
		gap     bool
		missed  []uint64
		live    []uint64 // of events 6 and 7 (orgs qj, ys), published after subscribing
		wantGap string
	}{
		{name: "no id: only new events", last: "", live: []uint64{6, 7}},
		{name: "continue after 2", last: id(2), missed: []uint64{3, 4, 5}, live: []uint64{6, 7}},
		{name: "up to date", last: id(5), live: []uint64{6, 7}},
		{name: "before the first event", last: id(0), missed: []uint64{1, 2, 3, 4, 5}, live: []uint64{6, 7}},
		{name: "filtered", allow: qj, last: id(1), missed: []uint64{3, 5}, live: []uint64{6}},
		{name: "other epoch", last: formatID(b.epoch-1, 2), gap: true, live: []uint64{6, 7}, wantGap: gapRestarted},
		{name: "from the future", last: id(6), gap: true, live: []uint64{6, 7}, wantGap: gapMalformed},
		{name: "garbage", last: "abc", gap: true, live: []uint64{6, 7}, wantGap: gapMalformed},
		{name: "no seq", last: fmt.Sprint(b.epoch) + "-", gap: true, live: []uint64{6, 7}, wantGap: gapMalformed},
		{name: "leading zero", last: fmt.Sprintf("%d-02", b.epoch), gap: true, live: []uint64{6, 7}, wantGap: gapMalformed},
		{name: "space", last: " " + id(2), gap: true, live: []uint64{6, 7}, wantGap: gapMalformed},
	}
	subs := make([]*Subscription, len(tests))
	for i, tt := range tests {
		subs[i] = b.Subscribe(tt.allow, tt.last)
		defer subs[i].Close()
	}
	if _, err := b.Publish(TypeDevice, "qj", payload{N: 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(TypeDevice, "ys", payload{N: 7}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := subs[i]
			if s.Gap != tt.gap || s.gapReason != tt.wantGap || !slices.Equal(seqs(s.Missed), tt.missed) {
				t.Fatalf("gap %v (%q), missed %v; want gap %v (%q), missed %v", s.Gap, s.gapReason, seqs(s.Missed), tt.gap, tt.wantGap, tt.missed)
			}
			for _, ev := range s.Missed {
				if want := fmt.Sprintf(`{"n":%d}`, ev.Seq); ev.ID != id(ev.Seq) || string(ev.Data) != want {
					t.Fatalf("missed event %s has data %s, want %s", ev.ID, ev.Data, want)
				}
			}
			var live []uint64
			for range tt.live {
				live = append(live, recv(t, s).Seq)
			}
			quiet(t, s)
			if !slices.Equal(live, tt.live) {
				t.Fatalf("live %v, want %v", live, tt.live)
			}
		})
	}
}

// The ring keeps exactly ReplaySize events: an id just inside it is served
// in full, one just outside is a gap.
func TestReplayRingBound(t *testing.T) {
	const size = 4
	b := NewBus(Params{ReplaySize: size})
	defer b.Close()
	for i := range 10 {
		if _, err := b.Publish(TypeAlert, "qj", payload{N: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		after  uint64
		gap    bool
		missed []uint64
	}{
		{after: 10},
		{after: 7, missed: []uint64{8, 9, 10}},
		{after: 6, missed: []uint64{7, 8, 9, 10}},
		{after: 5, gap: true},
		{after: 0, gap: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("after ", tt.after), func(t *testing.T) {
			s := b.Subscribe(nil, formatID(b.epoch, tt.after))
			defer s.Close()
			if s.Gap != tt.gap || !slices.Equal(seqs(s.Missed), tt.missed) {
				t.Fatalf("gap %v, missed %v; want gap %v, missed %v", s.Gap, seqs(s.Missed), tt.gap, tt.missed)
			}
			if tt.gap && s.gapReason != gapExpired {
				t.Fatalf("gap reason %q", s.gapReason)
			}
		})
	}
	b.mu.Lock()
	n := len(b.ring)
	b.mu.Unlock()
	if n != size {
		t.Fatalf("ring holds %d slots, want %d", n, size)
	}
}

// Subscribing with a Last-Event-ID while another goroutine publishes gives
// every event after that id exactly once, in order: replay and live meet
// with no gap and no overlap.
func TestReplayWhilePublishing(t *testing.T) {
	b := NewBus(Params{ReplaySize: 1 << 12})

	type result struct {
		after uint64
		allow func(Event) bool
		sub   *Subscription
		live  []Event
		err   error
	}
	var (
		mu      sync.Mutex // guards results while the publisher reads it
		results []*result
		wg      sync.WaitGroup
		budget  atomic.Int64 // events the publisher may still publish
	)

	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		for i := 0; ; {
			select {
			case <-stop:
				published <- nil
				return
			default:
			}
			if budget.Load() <= 0 {
				runtime.Gosched()
				continue
			}
			org := orgs.ID("qj")
			if i%3 == 0 {
				org = "ys"
			}
			if _, err := b.Publish(TypeCommand, org, payload{N: i}); err != nil {
				published <- err
				return
			}
			i++
			budget.Add(-1)
			// Keep every collector's queue far from full, so none is cut
			// off however the goroutines are scheduled.
			mu.Lock()
			for _, r := range results {
				for len(r.sub.C()) > DefaultSubscriberQueue/2 {
					runtime.Gosched()
				}
			}
			mu.Unlock()
		}
	}()

	qj := func(e Event) bool { return e.OrgID == "qj" }
	budget.Add(10)
	waitFor(t, "first events", func() bool { return b.seqNow() >= 10 })
	for i := range 60 {
		// Let the publisher move on, then pick an id a few events back,
		// so there is always something to replay. It has more to publish
		// while this subscribes.
		seen := b.seqNow()
		budget.Add(20)
		waitFor(t, "publisher", func() bool { return b.seqNow() >= seen+3 })
		r := &result{after: b.seqNow() - uint64(1+i%7)}
		if i%2 == 1 {
			r.allow = qj
		}
		r.sub = b.Subscribe(r.allow, formatID(b.epoch, r.after))
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		wg.Go(func() {
			for ev := range r.sub.C() {
				r.live = append(r.live, ev)
			}
			r.err = r.sub.Err()
		})
	}
	// One more event after the last subscription, so every unfiltered one
	// has something live.
	if _, err := b.Publish(TypeCommand, "qj", payload{N: -1}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// The ring holds every event: it is the truth to compare against.
	truth := b.Subscribe(nil, formatID(b.epoch, 0))
	b.Close()
	wg.Wait()
	if truth.Gap {
		t.Fatal("the ring lost events")
	}

	var both int
	for i, r := range results {
		if r.sub.Gap || !errors.Is(r.err, ErrClosed) {
			t.Fatalf("subscription %d: gap %v, ended with %v", i, r.sub.Gap, r.err)
		}
		got := append(seqs(r.sub.Missed), seqs(r.live)...)
		var want []uint64
		for _, ev := range truth.Missed[r.after:] {
			if r.allow == nil || r.allow(ev) {
				want = append(want, ev.Seq)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("subscription %d after %d: got %d events, want %d", i, r.after, len(got), len(want))
		}
		if len(r.sub.Missed) > 0 && len(r.live) > 0 {
			both++
		}
	}
	if both == 0 {
		t.Fatal("no subscription had both replayed and live events; the test proved nothing")
	}
	t.Logf("%d subscriptions, %d with both replayed and live events, %d events", len(results), both, len(truth.Missed))
}

// seqNow returns the sequence of the newest event.
func (b *Bus) seqNow() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// A subscriber that stops reading is cut off when its queue is full; the
// publisher never waits for it, and the others get everything.
func TestLaggingSubscriberIsCutOff(t *testing.T) {
	const queue, n = 4, 500
	b := NewBus(Params{SubscriberQueue: queue})
	defer b.Close()
	slow := b.Subscribe(nil, "")
	defer slow.Close()
	fast := b.Subscribe(nil, "")
	defer fast.Close()

	var got []uint64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range fast.C() {
			got = append(got, ev.Seq)
			if len(got) == n {
				return
			}
		}
	}()

	// Publish from a goroutine of its own, so a blocked Publish fails the
	// test instead of hanging it.
	pubDone := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := b.Publish(TypeAlert, "qj", payload{N: i}); err != nil {
				pubDone <- err
				return
			}
			// Let the fast reader keep up; the slow one never reads.
			for len(fast.C()) >= queue-1 {
				runtime.Gosched()
			}
		}
		pubDone <- nil
	}()
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	<-readerDone

	if want := seqRange(1, n); !slices.Equal(got, want) {
		t.Fatalf("fast subscriber got %d events, want %d in order", len(got), n)
	}
	var slowGot []uint64
	for ev := range slow.C() {
		slowGot = append(slowGot, ev.Seq)
	}
	if !slices.Equal(slowGot, seqRange(1, queue)) || !errors.Is(slow.Err(), ErrLagging) {
		t.Fatalf("slow subscriber got %v then %v; want %v then ErrLagging", slowGot, slow.Err(), seqRange(1, queue))
	}
	if got := b.Subscribers(); got != 1 {
		t.Fatalf("%d subscribers after the cut-off, want 1", got)
	}
	// It comes back where it left off.
	again := b.Subscribe(nil, formatID(b.epoch, queue))
	defer again.Close()
	if again.Gap || !slices.Equal(seqs(again.Missed), seqRange(queue+1, n)) {
		t.Fatalf("reconnect: gap %v, %d missed", again.Gap, len(again.Missed))
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// Publishing to many subscribers that all lag stays fast: each is cut off
// once, and nothing waits.
func TestPublishNeverBlocks(t *testing.T) {
	b := NewBus(Params{SubscriberQueue: 1, ReplaySize: 16})
	defer b.Close()
	for range 100 {
		s := b.Subscribe(nil, "")
		defer s.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10000 {
			if _, err := b.Publish(TypeCamera, "qj", payload{N: i}); err != nil {
				panic(err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked")
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left, want all cut off", n)
	}
}

func TestClose(t *testing.T) {
	b := NewBus(Params{})
	a := b.Subscribe(nil, "")
	c := b.Subscribe(nil, "")
	if n := b.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}
	if a.Err() != nil {
		t.Fatalf("open subscription has Err %v", a.Err())
	}

	a.Close()
	a.Close() // idempotent
	if _, ok := <-a.C(); ok || !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("closed subscription: channel open %v, Err %v", ok, a.Err())
	}
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after one closed, want 1", n)
	}
	if _, err := b.Publish(TypeWall, "qj", payload{}); err != nil {
		t.Fatal(err)
	}
	recv(t, c)

	b.Close()
	b.Close() // idempotent
	if _, ok := <-c.C(); ok || !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("after bus Close: channel open %v, Err %v", ok, c.Err())
	}
	c.Close()
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
	if _, err := b.Publish(TypeWall, "qj", payload{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	late := b.Subscribe(nil, formatID(b.epoch, 0))
	if _, ok := <-late.C(); ok || !errors.Is(late.Err(), ErrClosed) || len(late.Missed) != 0 {
		t.Fatalf("Subscribe after Close: channel open %v, Err %v", ok, late.Err())
	}
	late.Close()
}

// A lagging subscription keeps ErrLagging when its owner closes it.
func TestCloseAfterLagging(t *testing.T) {
	b := NewBus(Params{SubscriberQueue: 1})
	defer b.Close()
	s := b.Subscribe(nil, "")
	for range 2 {
		if _, err := b.Publish(TypeAlert, "qj", payload{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if !errors.Is(s.Err(), ErrLagging) {
		t.Fatalf("Err %v, want ErrLagging", s.Err())
	}
}

type unmarshalable struct{}

func (unmarshalable) MarshalJSON() ([]byte, error) { return nil, errors.New("boom") }

func TestPublishRejects(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		data any
	}{
		{"empty type", "", payload{}},
		{"upper case type", "Alert", payload{}},
		{"type with newline", "alert\nid: 1", payload{}},
		{"type with colon", "a:b", payload{}},
		{"long type", "a123456789012345678901234567890123", payload{}},
		{"reserved gap", "gap", payload{}},
		{"reserved lagging", "lagging", payload{}},
		{"reserved error", "error", payload{}},
		{"nil data", TypeAlert, nil},
		{"number", TypeAlert, 1},
		{"string", TypeAlert, "x"},
		{"array", TypeAlert, []int{1}},
		{"channel", TypeAlert, make(chan int)},
		{"failing marshaler", TypeAlert, unmarshalable{}},
		{"invalid raw", TypeAlert, json.RawMessage(`{"a":`)},
	}
	b := NewBus(Params{})
	defer b.Close()
	s := b.Subscribe(nil, "")
	defer s.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ev, err := b.Publish(tt.typ, "qj", tt.data); err == nil {
				t.Fatalf("published %s", ev.ID)
			}
		})
	}
	quiet(t, s)
	ev, err := b.Publish("alert.v2", "qj", json.RawMessage("{\n  \"a\" : [1, 2]\n}"))
	if err != nil || ev.Seq != 1 || string(ev.Data) != `{"a":[1,2]}` {
		t.Fatalf("first good event: seq %d data %s err %v; want seq 1, compacted data", ev.Seq, ev.Data, err)
	}
}

func TestNewBusRejectsNegativeSizes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewBus(Params{ReplaySize: -1})
}

// Publish allocates the frame and the id, and nothing per subscriber.
func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	b := NewBus(Params{})
	defer b.Close()
	var subs []*Subscription
	for i := range 20 {
		org := orgs.ID("qj")
		s := b.Subscribe(func(e Event) bool { return i%2 == 0 || e.OrgID == org }, "")
		defer s.Close()
		subs = append(subs, s)
	}
	p := &payload{N: 1, Name: "水位超限"}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := b.Publish(TypeAlert, "qj", p); err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			<-s.C()
		}
	})
	if allocs > 2 {
		t.Fatalf("Publish makes %v allocations, want at most 2", allocs)
	}
}

// BenchmarkPublish publishes to 100 subscribers, each drained by a goroutine
// of its own, as ServeSSE would.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name  string
		allow func(i int) func(Event) bool
	}{
		{"all", func(int) func(Event) bool { return nil }},
		// Each subscriber sees one org of ten, as county users would.
		{"scoped", func(i int) func(Event) bool {
			org := orgs.ID(fmt.Sprint("org", i%10))
			return func(e Event) bool { return e.OrgID == org }
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bus := NewBus(Params{})
			var wg sync.WaitGroup
			for i := range 100 {
				s := bus.Subscribe(bc.allow(i), "")
				wg.Go(func() {
					for range s.C() {
					}
				})
			}
			orgIDs := make([]orgs.ID, 10)
			for i := range orgIDs {
				orgIDs[i] = orgs.ID(fmt.Sprint("org", i))
			}
			p := &payload{N: 1, Name: "水位超限"}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := bus.Publish(TypeAlert, orgIDs[i%10], p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(bus.Subscribers()), "subs_left")
			bus.Close()
			wg.Wait()
		})
	}
}
