package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/console/users"
	"github.com/lookout-cc/lookout/console/walls"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/health"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/whep"
)

// env is a console API over real stores in a temporary SQLite database, with
// the org tree 云南省 > 昭通市 > {巧家县, 永善县} and a province admin.
type env struct {
	t        *testing.T
	srv      *httptest.Server
	orgs     *orgs.Store
	users    *users.Store
	signer   *auth.Signer
	api      http.Handler
	store    *tsdb.Embedded
	devices  *devices.Registry
	presence *devices.Presence
	broker   *noBroker
	engine   *alerts.Engine
	hub      *cameras.Hub
	bus      *events.Bus
	dbPath   string
	dataDir  string
}

const adminPassword = "province-admin-pw"

// noBroker refuses every publish: the API tests need no MQTT; commands over
// a real broker are tested in internal/server. It counts the tries per
// device, so a test can see which commands were handed to the broker.
type noBroker struct {
	mu    sync.Mutex
	tried map[devices.ID]int
}

func (b *noBroker) PublishCommand(id devices.ID, _ []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tried[id]++
	return errors.New("no broker in this test")
}

// triedDevices returns the devices a publish was tried for.
func (b *noBroker) triedDevices() map[devices.ID]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.tried)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dataDir := t.TempDir()
	db, err := sqldb.Open(ctx, dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tree, err := orgs.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.EnsureRoot(ctx, orgs.NewOrg{ID: "yn", Name: "云南省", Kind: "province"}); err != nil {
		t.Fatal(err)
	}
	root, _ := tree.ScopeOf("yn")
	for _, o := range []orgs.NewOrg{
		{ID: "zt", ParentID: "yn", Name: "昭通市", Kind: "prefecture"},
		{ID: "qj", ParentID: "zt", Name: "巧家县", Kind: "county"},
		{ID: "ys", ParentID: "zt", Name: "永善县", Kind: "county"},
	} {
		if _, err := tree.Create(ctx, root, o); err != nil {
			t.Fatal(err)
		}
	}
	us, err := users.NewStore(db, tree)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.EnsureAdmin(ctx, "admin", "yn", adminPassword); err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigner(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.NewRegistry(ctx, db, tree)
	if err != nil {
		t.Fatal(err)
	}
	store, err := tsdb.OpenEmbedded(ctx, t.TempDir(), 24*time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	auditLog, err := audit.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	presence, err := devices.NewPresence(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	broker := &noBroker{tried: map[devices.ID]int{}}
	cmds, err := devices.NewCommands(ctx, db, reg, presence, broker, auditLog, log)
	if err != nil {
		t.Fatal(err)
	}
	reg.OnRemoved = cmds.DeviceRemoved
	cmds.Start()
	t.Cleanup(cmds.Close)
	bus := events.NewBus(events.Params{})
	t.Cleanup(bus.Close)
	alertStore, err := alerts.NewStore(ctx, db, auditLog, tree, log)
	if err != nil {
		t.Fatal(err)
	}
	alertStore.OnEvent = func(typ string, org orgs.ID, data any) { _, _ = bus.Publish(typ, org, data) }
	engine, err := alerts.NewEngine(alerts.EngineParams{Store: alertStore, Devices: reg, Orgs: tree, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	engine.Start()
	t.Cleanup(engine.Close)
	rules, err := alerts.NewRules(ctx, db, tree, reg, auditLog, engine)
	if err != nil {
		t.Fatal(err)
	}
	hr := health.NewRegistry()
	hr.Add("state", db.PingContext)
	// The hub pulls only what a test gives it (Set): the registry is not
	// wired to it here.
	hub, err := cameras.New(cameras.Params{Log: log, Transport: "tcp", Prebuffer: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	clipStore, err := clips.NewStore(clips.StoreParams{DB: db, Dir: filepath.Join(dataDir, "clips"), Buffers: hub})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rtc.New(rtc.Params{UDPAddr: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	roomStore := rooms.NewStore(db, tree)
	sfu, err := meeting.New(meeting.Params{Peers: eng, Rooms: rooms.InOrg{Store: roomStore}, Verify: signer.VerifyJoin, Audit: auditLog, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sfu.Close()
		_ = eng.Close()
	})
	pets := petitions.NewStore(db, tree, mustSealer(t), nil)
	hs, err := hearings.New(hearings.Params{DB: db, Tree: tree, Petitions: pets, Rooms: roomStore, Signer: signer, Meetings: sfu,
		RecordingsDir: filepath.Join(dataDir, "recordings"), Audit: auditLog, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Params{Log: log, Metrics: prometheus.NewRegistry(), Health: hr, Orgs: tree, Users: us, Devices: reg, Audit: auditLog, Presence: presence, Commands: cmds, Rules: rules, Alerts: alertStore, Events: bus, Telemetry: store,
		Cameras: hub, WHEP: whep.New(whep.Params{Log: log}), Clips: clipStore, Rooms: roomStore, Meetings: sfu, Walls: walls.NewStore(db, tree, reg), Signer: signer,
		Throttle: auth.NewThrottle(3, 200*time.Millisecond, time.Second), TokenTTL: time.Hour, MaxBodyBytes: 4096, Version: "test",
		Petitions: pets, Hearings: hs,
		Console: fakeConsole(t), ConsoleConfig: ConsoleConfig{Map: MapConfig{Tiles: []string{"https://tiles.internal.example/{z}/{x}/{y}.png"}, MaxZoom: 16}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: httptest.NewServer(api), orgs: tree, users: us, signer: signer, api: api, store: store, devices: reg, presence: presence, broker: broker, engine: engine, hub: hub, bus: bus, dbPath: filepath.Join(dataDir, sqldb.FileName), dataDir: dataDir}
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends a request; body may be a string (sent as is) or a value (sent as
// JSON).
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *env) login(user, password string) string {
	e.t.Helper()
	r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": password})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", user, r.status, r.raw)
	}
	return r.body["token"].(string)
}

func (e *env) mustStatus(r response, want int) {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
}

// A county user sees and changes only their county; a province user sees
// and changes every county below them.
func TestTierScopingOfUsersAndOrgs(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	for _, u := range []map[string]any{
		{"id": "qj-admin", "org_id": "qj", "role": "admin", "password": "qiaojia-pass", "display_name": "巧家县管理员"},
		{"id": "qj-op", "org_id": "qj", "role": "operator", "password": "qiaojia-op-pass"},
		{"id": "ys-admin", "org_id": "ys", "role": "admin", "password": "yongshan-pass"},
		{"id": "ys-op", "org_id": "ys", "role": "operator", "password": "yongshan-op-pass"},
	} {
		e.mustStatus(e.do("POST", "/api/v1/users", prov, u), http.StatusCreated)
	}
	qj := e.login("qj-admin", "qiaojia-pass")

	// Reading.
	e.mustStatus(e.do("GET", "/api/v1/users/qj-op", qj, nil), http.StatusOK)
	r := e.do("GET", "/api/v1/users/ys-op", qj, nil)
	e.mustStatus(r, http.StatusForbidden)
	if r.errCode() != "out_of_scope" {
		t.Fatalf("code %q", r.errCode())
	}
	e.mustStatus(e.do("GET", "/api/v1/users/ys-op", prov, nil), http.StatusOK)
	e.mustStatus(e.do("GET", "/api/v1/users/nobody", qj, nil), http.StatusNotFound)

	ids := func(r response) []string {
		var out []string
		for _, it := range r.body["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := ids(e.do("GET", "/api/v1/users", qj, nil)); strings.Join(got, ",") != "qj-admin,qj-op" {
		t.Fatalf("county admin lists %v", got)
	}
	if got := ids(e.do("GET", "/api/v1/users", prov, nil)); len(got) != 5 {
		t.Fatalf("province admin lists %v", got)
	}
	if got := ids(e.do("GET", "/api/v1/users?org_id=ys", qj, nil)); len(got) != 0 {
		t.Fatalf("county admin filtering another county gets %v", got)
	}
	if got := ids(e.do("GET", "/api/v1/orgs", qj, nil)); strings.Join(got, ",") != "qj" {
		t.Fatalf("county admin sees orgs %v", got)
	}
	if got := ids(e.do("GET", "/api/v1/orgs", prov, nil)); strings.Join(got, ",") != "yn,zt,qj,ys" {
		t.Fatalf("province admin sees orgs %v", got)
	}
	e.mustStatus(e.do("GET", "/api/v1/orgs/ys", qj, nil), http.StatusForbidden)
	e.mustStatus(e.do("GET", "/api/v1/orgs/zt", qj, nil), http.StatusForbidden) // the parent is outside too

	// Changing.
	e.mustStatus(e.do("PATCH", "/api/v1/users/ys-op", qj, map[string]any{"disabled": true}), http.StatusForbidden)
	e.mustStatus(e.do("PATCH", "/api/v1/users/qj-op", qj, map[string]any{"org_id": "ys"}), http.StatusForbidden)
	e.mustStatus(e.do("POST", "/api/v1/users", qj, map[string]any{"id": "x", "org_id": "ys", "role": "viewer", "password": "12345678"}), http.StatusForbidden)
	e.mustStatus(e.do("POST", "/api/v1/orgs", qj, map[string]any{"id": "ys-town", "parent_id": "ys", "name": "镇", "kind": "township"}), http.StatusForbidden)
	e.mustStatus(e.do("POST", "/api/v1/orgs", qj, map[string]any{"id": "qj-town", "parent_id": "qj", "name": "白鹤滩镇", "kind": "township"}), http.StatusCreated)
	e.mustStatus(e.do("PATCH", "/api/v1/users/qj-op", qj, map[string]any{"org_id": "qj-town", "display_name": "值班员"}), http.StatusOK)
	e.mustStatus(e.do("PATCH", "/api/v1/users/ys-op", prov, map[string]any{"disabled": true}), http.StatusOK)
	// Nothing of ys-op changed by the refused calls, and the province's
	// change took effect: the disabled user can no longer log in.
	r = e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "ys-op", "password": "yongshan-op-pass"})
	e.mustStatus(r, http.StatusUnauthorized)

	// Roles: an operator cannot manage users even in their own county.
	op := e.login("qj-op", "qiaojia-op-pass")
	e.mustStatus(e.do("GET", "/api/v1/users", op, nil), http.StatusForbidden)
	e.mustStatus(e.do("GET", "/api/v1/orgs", op, nil), http.StatusOK)

	// No one locks themselves out.
	r = e.do("PATCH", "/api/v1/users/qj-admin", qj, map[string]any{"disabled": true})
	e.mustStatus(r, http.StatusConflict)

	// A role change applies at once, to tokens already issued.
	e.mustStatus(e.do("PATCH", "/api/v1/users/qj-admin", prov, map[string]any{"role": "viewer"}), http.StatusOK)
	e.mustStatus(e.do("GET", "/api/v1/users", qj, nil), http.StatusForbidden)
}

func TestBadInputGetsClearErrors(t *testing.T) {
	e := newEnv(t)
	tok := e.login("admin", adminPassword)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		ctype  string
		status int
		code   string
		field  string
	}{
		{"malformed json", "POST", "/api/v1/users", `{"id": "a",`, "", 400, "invalid_json", ""},
		{"not an object", "POST", "/api/v1/users", `[1,2]`, "", 400, "invalid_json", ""},
		{"empty body", "POST", "/api/v1/users", ``, "", 400, "invalid_json", ""},
		{"trailing data", "POST", "/api/v1/orgs", `{"id":"a","parent_id":"yn","name":"A","kind":"county"} {}`, "", 400, "invalid_json", ""},
		{"unknown field", "POST", "/api/v1/users", `{"id":"a","admin":true}`, "", 400, "unknown_field", "admin"},
		{"wrong type", "POST", "/api/v1/users", `{"id":42}`, "", 400, "invalid_type", "id"},
		{"wrong content type", "POST", "/api/v1/users", `{}`, "text/plain", 415, "unsupported_media_type", ""},
		{"too large", "POST", "/api/v1/users", `{"display_name":"` + strings.Repeat("x", 5000) + `"}`, "", 413, "body_too_large", ""},
		{"bad id", "POST", "/api/v1/users", map[string]any{"id": "Bad Name", "org_id": "qj", "role": "viewer", "password": "12345678"}, "", 422, "invalid_field", "id"},
		{"bad role", "POST", "/api/v1/users", map[string]any{"id": "a", "org_id": "qj", "role": "root", "password": "12345678"}, "", 422, "invalid_field", "role"},
		{"short password", "POST", "/api/v1/users", map[string]any{"id": "a", "org_id": "qj", "role": "viewer", "password": "123"}, "", 422, "invalid_field", "password"},
		{"unknown org", "POST", "/api/v1/users", map[string]any{"id": "a", "org_id": "nowhere", "role": "viewer", "password": "12345678"}, "", 422, "invalid_field", "org_id"},
		{"duplicate user", "POST", "/api/v1/users", map[string]any{"id": "admin", "org_id": "yn", "role": "viewer", "password": "12345678"}, "", 409, "user_exists", ""},
		{"bad org kind", "POST", "/api/v1/orgs", map[string]any{"id": "b", "parent_id": "yn", "name": "B", "kind": "empire"}, "", 422, "invalid_field", "kind"},
		{"org without parent", "POST", "/api/v1/orgs", map[string]any{"id": "b", "name": "B", "kind": "county"}, "", 422, "invalid_field", "parent_id"},
		{"duplicate org", "POST", "/api/v1/orgs", map[string]any{"id": "qj", "parent_id": "yn", "name": "B", "kind": "county"}, "", 409, "org_exists", ""},
		{"unknown endpoint", "GET", "/api/v1/nothing", nil, "", 404, "not_found", ""},
		{"wrong method", "DELETE", "/api/v1/orgs", nil, "", 405, "method_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader
			switch b := tt.body.(type) {
			case string:
				rd = strings.NewReader(b)
			case nil:
			default:
				js, _ := json.Marshal(b)
				rd = bytes.NewReader(js)
			}
			req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, rd)
			ct := tt.ctype
			if ct == "" {
				ct = "application/json; charset=utf-8"
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error errorDetail `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Field != tt.field || body.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s field %q", resp.StatusCode, body.Error, tt.status, tt.code, tt.field)
			}
		})
	}
	// Nothing was created by the refused requests.
	if n := len(e.orgs.List(mustScope(t, e, "yn"))); n != 4 {
		t.Fatalf("%d orgs after bad requests, want 4", n)
	}
}

func mustScope(t *testing.T, e *env, id orgs.ID) orgs.Scope {
	s, err := e.orgs.ScopeOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every /api/v1 route but login and the resident's hearing link (which
// carries its own signed token in the body: TestHearingsByRole) refuses a
// request without a valid console token, including routes added after
// this test was written.
func TestEveryAPIRouteNeedsAToken(t *testing.T) {
	e := newEnv(t)
	forged, _, _ := func() (string, time.Time, error) {
		other := newEnv(t)
		return other.signer.Issue("admin", "yn", auth.RoleAdmin, time.Hour)
	}()
	routes := e.api.(*gin.Engine).Routes()
	if len(routes) < 8 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/api/v1/") || rt.Path == "/api/v1/auth/login" || strings.HasPrefix(rt.Path, "/api/v1/hearing-link/") {
			continue
		}
		path := strings.NewReplacer(":id", "x").Replace(rt.Path)
		for name, tok := range map[string]string{"no token": "", "forged": forged, "garbage": "not.a.token"} {
			r := e.do(rt.Method, path, tok, nil)
			if r.status != http.StatusUnauthorized || (r.errCode() != "unauthenticated" && r.errCode() != "invalid_token") {
				t.Errorf("%s %s with %s: %d %s", rt.Method, rt.Path, name, r.status, r.raw)
			}
		}
	}
	r := e.do("GET", "/api/v1/orgs", "", nil)
	if r.errCode() != "unauthenticated" {
		t.Fatalf("missing token code %q", r.errCode())
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/orgs", nil)
	req.Header.Set("Authorization", "Basic YWRtaW46eA==")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}
}

func TestLoginFailuresAreUniformAndThrottled(t *testing.T) {
	e := newEnv(t)
	wrongPass := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "wrong-password"})
	noUser := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "ghost", "password": "wrong-password"})
	if wrongPass.status != 401 || noUser.status != 401 || wrongPass.raw != noUser.raw {
		t.Fatalf("wrong password and unknown user differ: %s vs %s", wrongPass.raw, noUser.raw)
	}
	e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "wrong-again"})
	// Three failures from this address: the next attempt waits, even with
	// the right password, and says how long.
	r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword})
	e.mustStatus(r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" || r.errCode() != "too_many_attempts" {
		t.Fatalf("throttled answer: %v %s", r.header, r.raw)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword})
		if r.status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mustStatus(r, http.StatusOK)
}

func TestHealthzAndMetrics(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", nil)
	e.mustStatus(r, http.StatusOK)
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `lookout_http_requests_total{code="200",method="GET",route="/healthz"} 1`) {
		t.Fatalf("metrics lack the request counter:\n%s", body)
	}
}
