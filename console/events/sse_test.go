package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
)

// message is one SSE message as a client parses it: the fields up to a
// blank line.
type message struct {
	ID       string // the id field, if HasID
	HasID    bool
	Event    string
	Data     string
	Retry    string
	Comments []string
}

// readMessages parses an event stream as the HTML standard describes (for
// the line endings and fields this server uses) and sends each message on
// out, until the stream ends (nil), stop is closed or something unexpected
// turns up.
func readMessages(r io.Reader, out chan<- message, stop <-chan struct{}) error {
	br := bufio.NewReader(r)
	var m message
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return nil
			}
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.ContainsRune(line, '\r') {
			return fmt.Errorf("carriage return in line %q", line)
		}
		switch name, value, _ := strings.Cut(line, ":"); {
		case line == "":
			m.Data = strings.Join(data, "\n")
			select {
			case out <- m:
			case <-stop:
				return errors.New("stopped")
			}
			m, data = message{}, nil
		case name == "":
			m.Comments = append(m.Comments, strings.TrimPrefix(value, " "))
		default:
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "id":
				m.ID, m.HasID = value, true
			case "event":
				m.Event = value
			case "data":
				data = append(data, value)
			case "retry":
				m.Retry = value
			default:
				return fmt.Errorf("unknown field in line %q", line)
			}
		}
	}
}

// sseClient is one connection to the event stream, read by a goroutine of
// its own until the stream ends or the client closes it.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	msgs   chan message
	stop   chan struct{}
	once   sync.Once
	done   chan struct{} // closed when the reader returns, after err is set
	err    error
	lastID string   // as EventSource keeps it
	ahead  *message // read by start, not yet returned by next
}

func dial(t testing.TB, url, lastEventID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{
		t: t, resp: resp, cancel: cancel, lastID: lastEventID,
		msgs: make(chan message, 64), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(c.done)
		c.err = readMessages(resp.Body, c.msgs, c.stop)
	}()
	t.Cleanup(c.close)
	return c
}

// close hangs up and waits for the reading goroutine.
func (c *sseClient) close() {
	c.once.Do(func() {
		c.cancel()
		close(c.stop)
		c.resp.Body.Close()
		<-c.done
	})
}

// ended waits for the stream to end and returns the reader's error.
func (c *sseClient) ended() error {
	select {
	case <-c.done:
		return c.err
	case <-time.After(5 * time.Second):
		return errors.New("the stream did not end")
	}
}

// next returns the next message, tracking the last event id as EventSource
// does: every message with an id field sets it, data or not.
func (c *sseClient) next() message {
	c.t.Helper()
	if m := c.ahead; m != nil {
		c.ahead = nil
		return *m
	}
	var m message
	select {
	case m = <-c.msgs:
	case <-c.done:
		select {
		case m = <-c.msgs:
		default:
			c.t.Fatalf("stream ended: %v", c.err)
		}
	case <-time.After(5 * time.Second):
		c.t.Fatal("no message within 5 s")
	}
	if m.HasID {
		c.lastID = m.ID
	}
	return m
}

// nextEvent skips messages without data (position updates, pings) and
// returns the next event, decoded.
func (c *sseClient) nextEvent() (message, Event) {
	c.t.Helper()
	for {
		m := c.next()
		if m.Data == "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
			c.t.Fatalf("data of %s is not an Event: %v: %q", m.Event, err, m.Data)
		}
		return m, ev
	}
}

// handler serves the bus as the console would: scoped to the org in the
// query (all if none), resuming from Last-Event-ID. It reports what each
// ServeSSE call returned.
type handler struct {
	bus       *Bus
	heartbeat time.Duration
	results   chan error
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var allow func(Event) bool
	if org := orgs.ID(r.URL.Query().Get("org")); org != "" {
		allow = func(e Event) bool { return e.OrgID == org }
	}
	sub := h.bus.Subscribe(allow, r.Header.Get("Last-Event-ID"))
	defer sub.Close()
	h.results <- ServeSSE(w, r, sub, h.heartbeat)
}

func newServer(t testing.TB, p Params, heartbeat time.Duration) (*Bus, *httptest.Server, *handler) {
	t.Helper()
	bus := NewBus(p)
	h := &handler{bus: bus, heartbeat: heartbeat, results: make(chan error, 100)}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		bus.Close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return bus, srv, h
}

// start reads the opening of a stream: retry, then (if gap) the gap event,
// then the position id unless replayed events come first (the last of them
// is the position then). It returns the gap reason, if any.
func (c *sseClient) start() (gap string) {
	c.t.Helper()
	if m := c.next(); m.Retry != "2000" || m.Data != "" || m.HasID {
		c.t.Fatalf("first message %+v, want retry 2000 alone", m)
	}
	m := c.next()
	if m.Event == "gap" {
		var d struct{ Reason string }
		if err := json.Unmarshal([]byte(m.Data), &d); err != nil || d.Reason == "" {
			c.t.Fatalf("gap data %q: %v", m.Data, err)
		}
		gap = d.Reason
		m = c.next()
	}
	if !m.HasID || (m.Data != "") != (m.Event != "") {
		c.t.Fatalf("neither a position nor an event after the opening: %+v", m)
	}
	if m.Data != "" {
		c.ahead = &m
	}
	return gap
}

func TestSSEStreamAndResume(t *testing.T) {
	clk := newClock(epoch0)
	bus, srv, _ := newServer(t, Params{Now: clk.Now}, time.Hour)

	c := dial(t, srv.URL, "")
	if got := c.resp.Header; got.Get("Content-Type") != "text/event-stream; charset=utf-8" ||
		got.Get("Cache-Control") != "no-cache" || got.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", got)
	}
	if gap := c.start(); gap != "" {
		t.Fatalf("gap %q on a fresh stream", gap)
	}
	if want := formatID(bus.epoch, 0); c.lastID != want {
		t.Fatalf("position %q, want %q", c.lastID, want)
	}

	var published []Event
	publish := func(typ string, org orgs.ID, n int) {
		t.Helper()
		ev, err := bus.Publish(typ, org, payload{N: n, Name: "line\nbreak \u2028 <tag>"})
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, ev)
	}
	check := func(c *sseClient, want Event) {
		t.Helper()
		m, got := c.nextEvent()
		if m.ID != want.ID || m.Event != want.Type || got.ID != want.ID || got.Type != want.Type ||
			got.OrgID != want.OrgID || !got.At.Equal(want.At) || string(got.Data) != string(want.Data) {
			t.Fatalf("got %s %s %+v\nwant %+v", m.ID, m.Event, got, want)
		}
		if c.lastID != want.ID {
			t.Fatalf("last id %q after event %s", c.lastID, want.ID)
		}
	}

	types := []string{TypeAlert, TypeDevice, TypeCommand, TypeCamera, TypeWall}
	for i, typ := range types {
		publish(typ, "qj", i)
	}
	for _, want := range published {
		check(c, want)
	}

	// The client goes away; events go on; it comes back with its last id
	// and continues exactly, then live.
	resumeFrom := c.lastID
	c.close()
	waitFor(t, "the stream to unsubscribe", func() bool { return bus.Subscribers() == 0 })
	for i := range 3 {
		publish(TypeAlert, "ys", 10+i)
	}
	c = dial(t, srv.URL, resumeFrom)
	if gap := c.start(); gap != "" {
		t.Fatalf("gap %q on resume", gap)
	}
	for _, want := range published[5:8] {
		check(c, want)
	}
	publish(TypeWall, "qj", 20)
	check(c, published[8])

	// A scoped stream resumes with only its org's events.
	scoped := dial(t, srv.URL+"?org=qj", resumeFrom)
	scoped.start()
	publish(TypeWall, "qj", 21)
	check(scoped, published[8])
	check(scoped, published[9])
	check(c, published[9])

	// Another epoch, as after a restart: a gap, then a position in this
	// epoch so the next reconnect resumes cleanly.
	other := dial(t, srv.URL, formatID(bus.epoch-5, 3))
	if gap := other.start(); gap != gapRestarted {
		t.Fatalf("gap %q, want %q", gap, gapRestarted)
	}
	if want := published[9].ID; other.lastID != want {
		t.Fatalf("position after gap %q, want %q", other.lastID, want)
	}
	publish(TypeAlert, "qj", 22)
	check(other, published[10])

	bad := dial(t, srv.URL, "not-an-id")
	if gap := bad.start(); gap != gapMalformed {
		t.Fatalf("gap %q, want %q", gap, gapMalformed)
	}
}

// The ring is shorter than what a scoped client let go by, yet the client
// resumes without a gap: the heartbeat carries its position.
func TestSSEHeartbeatCarriesPosition(t *testing.T) {
	bus, srv, _ := newServer(t, Params{ReplaySize: 4}, 5*time.Millisecond)
	c := dial(t, srv.URL+"?org=qj", "")
	c.start()
	var last Event
	for i := range 10 {
		ev, err := bus.Publish(TypeDevice, "ys", payload{N: i})
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	pings := 0
	for c.lastID != last.ID {
		m := c.next()
		if m.Data != "" || m.Event != "" || !slices.Equal(m.Comments, []string{"ping"}) {
			t.Fatalf("expected only pings, got %+v", m)
		}
		pings++
	}
	t.Logf("position reached %s after %d pings", c.lastID, pings)
	// A ping with nothing new carries no id.
	if m := c.next(); m.HasID || !slices.Equal(m.Comments, []string{"ping"}) {
		t.Fatalf("idle ping %+v", m)
	}
	c.close()

	again := dial(t, srv.URL+"?org=qj", last.ID)
	if gap := again.start(); gap != "" {
		t.Fatalf("gap %q after a heartbeat position", gap)
	}
}

// A subscription cut off for lagging ends its stream with a lagging event,
// after the events it had queued; the client resumes from the last of them.
func TestSSELagging(t *testing.T) {
	bus := NewBus(Params{SubscriberQueue: 2})
	defer bus.Close()
	sub := bus.Subscribe(nil, "")
	defer sub.Close()
	for i := range 5 {
		if _, err := bus.Publish(TypeAlert, "qj", payload{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	err := ServeSSE(rec, httptest.NewRequest("GET", "/api/v1/events", nil), sub, time.Hour)
	if !errors.Is(err, ErrLagging) {
		t.Fatalf("ServeSSE returned %v, want ErrLagging", err)
	}
	msgs := make(chan message, 100)
	if err := readMessages(rec.Body, msgs, nil); err != nil {
		t.Fatal(err)
	}
	close(msgs)
	var got []string
	lastID := ""
	for m := range msgs {
		switch {
		case m.Retry != "":
			got = append(got, "retry")
		case m.Event != "":
			got = append(got, m.Event)
		case m.HasID:
			got = append(got, "position")
		}
		if m.HasID {
			lastID = m.ID
		}
		if m.Event == "lagging" && !strings.Contains(m.Data, `"reason":`) {
			t.Fatalf("lagging data %q", m.Data)
		}
	}
	if want := []string{"retry", "position", "alert", "alert", "lagging"}; !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v", got, want)
	}
	again := bus.Subscribe(nil, lastID)
	defer again.Close()
	if again.Gap || !slices.Equal(seqs(again.Missed), []uint64{3, 4, 5}) {
		t.Fatalf("resume from %s: gap %v, missed %v", lastID, again.Gap, seqs(again.Missed))
	}
}

// Closing the bus ends every stream; a client that hangs up ends its own.
func TestSSEEnds(t *testing.T) {
	bus, srv, h := newServer(t, Params{}, time.Hour)

	c := dial(t, srv.URL, "")
	c.start()
	c.close()
	if err := <-h.results; err != nil {
		t.Fatalf("ServeSSE returned %v after the client left, want nil", err)
	}
	waitFor(t, "unsubscribe", func() bool { return bus.Subscribers() == 0 })

	c = dial(t, srv.URL, "")
	c.start()
	bus.Close()
	if err := <-h.results; !errors.Is(err, ErrClosed) {
		t.Fatalf("ServeSSE returned %v after Close, want ErrClosed", err)
	}
	if err := c.ended(); err != nil {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
}

// failingWriter fails every write after the first n.
type failingWriter struct {
	http.ResponseWriter
	n int
}

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("connection reset")
	}
	w.n--
	return w.ResponseWriter.Write(b)
}

func (w *failingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestSSEWriteFailure(t *testing.T) {
	bus := NewBus(Params{})
	defer bus.Close()
	sub := bus.Subscribe(nil, "")
	defer sub.Close()
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		w := &failingWriter{ResponseWriter: httptest.NewRecorder(), n: 1}
		err = ServeSSE(w, httptest.NewRequest("GET", "/", nil), sub, time.Hour)
	})
	if _, perr := bus.Publish(TypeAlert, "qj", payload{}); perr != nil {
		t.Fatal(perr)
	}
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("ServeSSE returned %v, want the write error", err)
	}
}

// BenchmarkSSELatency measures how long an event takes from Publish to the
// parsed message at every client over loopback HTTP: the time until the
// slowest of them has it.
func BenchmarkSSELatency(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint(n, "clients"), func(b *testing.B) {
			bus, srv, _ := newServer(b, Params{}, time.Hour)
			clients := make([]*sseClient, n)
			for i := range clients {
				clients[i] = dial(b, srv.URL, "")
				clients[i].start()
			}
			var lat []time.Duration
			p := &payload{N: 1, Name: "水位超限"}
			for b.Loop() {
				start := time.Now()
				ev, err := bus.Publish(TypeAlert, "qj", p)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range clients {
					if m := c.next(); m.ID != ev.ID {
						b.Fatalf("got %+v, want %s", m, ev.ID)
					}
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}
