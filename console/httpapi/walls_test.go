package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/console/events"
)

// wallEvents follows the wall events of the bus.
type wallEvents struct {
	t   *testing.T
	sub *events.Subscription
}

func followWalls(t *testing.T, bus *events.Bus) *wallEvents {
	sub := bus.Subscribe(func(ev events.Event) bool { return ev.Type == events.TypeWall }, "")
	t.Cleanup(sub.Close)
	return &wallEvents{t: t, sub: sub}
}

// next returns the next wall event's org and data.
func (w *wallEvents) next() (string, map[string]any) {
	w.t.Helper()
	select {
	case ev := <-w.sub.C():
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			w.t.Fatal(err)
		}
		return string(ev.OrgID), data
	case <-time.After(5 * time.Second):
		w.t.Fatal("no wall event")
		return "", nil
	}
}

// none checks that no wall event is waiting: a handler publishes before it
// answers.
func (w *wallEvents) none(what string) {
	w.t.Helper()
	select {
	case ev := <-w.sub.C():
		w.t.Fatalf("%s: wall event %s", what, ev.Data)
	default:
	}
}

// The walls API: created, read, listed, arranged and deleted inside the
// caller's subtree, by the roles that may; bad input refused with its
// field and nothing changed; every change audited and announced with the
// whole wall.
func TestWallsAPI(t *testing.T) {
	e := newCameraEnv(t)
	e.mustStatus(e.call("POST", "/api/v1/users", e.prov, map[string]any{"id": "qj-op", "org_id": "qj", "role": "operator", "password": "qiaojia-op-pw"}), 201)
	op := e.login("qj-op", "qiaojia-op-pw")
	for _, c := range []struct{ id, site string }{{"bht-dam", "bht"}, {"bht-gate", "bht"}, {"xld-dam", "xld"}} {
		e.mustStatus(e.call("POST", "/api/v1/cameras", e.prov, camera(c.id, c.site)), 201)
	}
	ev := followWalls(t, e.bus)
	same := func(what string, r response) {
		t.Helper()
		org, data := ev.next()
		if !reflect.DeepEqual(data, r.body) || org != r.body["org_id"] {
			t.Fatalf("%s: event %s %v, answer %s", what, org, data, r.raw)
		}
	}

	// Create.
	main := e.call("POST", "/api/v1/walls", e.prov, map[string]any{"id": "main", "name": "指挥大屏", "layout": "1+5", "alert_area": []int{0}})
	e.mustStatus(main, http.StatusCreated)
	if main.header.Get("Location") != "/api/v1/walls/main" || main.body["org_id"] != "yn" || main.body["version"] != 1.0 ||
		main.body["patrol"] != nil || main.body["updated_by"] != "admin" || len(main.body["tiles"].([]any)) != 6 ||
		!strings.Contains(main.raw, `"tiles":[{"source":null},{"source":null},`) || !strings.Contains(main.raw, `"alert_area":[0]`) {
		t.Fatalf("created: %d %v %s", main.status, main.header, main.raw)
	}
	same("create", main)
	county := e.call("POST", "/api/v1/walls", op, map[string]any{"name": "巧家县值班大屏"})
	e.mustStatus(county, http.StatusCreated)
	cid := county.body["id"].(string)
	if !strings.HasPrefix(cid, "wall-") || county.header.Get("Location") != "/api/v1/walls/"+cid || county.body["org_id"] != "qj" ||
		county.body["layout"] != "4" || !strings.Contains(county.raw, `"alert_area":[]`) {
		t.Fatalf("county wall: %s", county.raw)
	}
	same("county create", county)

	mainPath, countyPath := "/api/v1/walls/main", "/api/v1/walls/"+cid
	refused := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		want   string // code, and field when there is one
	}{
		{"viewer may not create", "POST", "/api/v1/walls", e.viewer, map[string]any{"name": "x"}, 403, "forbidden"},
		{"viewer may not set a tile", "PUT", countyPath + "/tiles/0", e.viewer, map[string]any{}, 403, "forbidden"},
		{"viewer may not delete", "DELETE", countyPath, e.viewer, nil, 403, "forbidden"},
		{"duplicate", "POST", "/api/v1/walls", e.prov, map[string]any{"id": "main", "name": "x"}, 409, "wall_exists"},
		{"county creates in the neighbour", "POST", "/api/v1/walls", op, map[string]any{"name": "x", "org_id": "ys"}, 403, "out_of_scope"},
		{"county reads the province's", "GET", mainPath, op, nil, 403, "out_of_scope"},
		{"county changes the province's", "PATCH", mainPath, op, map[string]any{"name": "x"}, 403, "out_of_scope"},
		{"county sets the province's tile", "PUT", mainPath + "/tiles/1", op, map[string]any{"source": map[string]any{"kind": "camera", "id": "bht-dam"}}, 403, "out_of_scope"},
		{"county deletes the province's", "DELETE", mainPath, op, nil, 403, "out_of_scope"},
		{"unknown", "GET", "/api/v1/walls/nope", e.prov, nil, 404, "wall_not_found"},
		{"unknown patch", "PATCH", "/api/v1/walls/nope", e.prov, map[string]any{"name": "x"}, 404, "wall_not_found"},
		{"unknown tile", "PUT", "/api/v1/walls/nope/tiles/0", e.prov, map[string]any{}, 404, "wall_not_found"},
		{"malformed JSON", "PATCH", mainPath, e.prov, `{"name": `, 400, "invalid_json"},
		{"unknown field", "PATCH", mainPath, e.prov, map[string]any{"tiles": []any{}}, 400, "unknown_field tiles"},
		{"patrol of the wrong shape", "PATCH", mainPath, e.prov, map[string]any{"patrol": []int{1}}, 400, "invalid_type patrol"},
		{"unknown field in a patrol", "PATCH", mainPath, e.prov, map[string]any{"patrol": map[string]any{"cams": []string{"a"}}}, 400, "invalid_type patrol"},
		{"unknown field in a source", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"source": map[string]any{"kind": "camera", "id": "bht-dam", "url": "x"}}, 400, "unknown_field url"},
		{"unknown layout", "POST", "/api/v1/walls", e.prov, map[string]any{"name": "x", "layout": "3"}, 422, "invalid_field layout"},
		{"unknown layout in a patch", "PATCH", mainPath, e.prov, map[string]any{"layout": "2x2"}, 422, "invalid_field layout"},
		{"alert area twice the same tile", "PATCH", mainPath, e.prov, map[string]any{"alert_area": []int{0, 1, 0}}, 422, "invalid_field alert_area"},
		{"alert area off the layout", "POST", "/api/v1/walls", e.prov, map[string]any{"name": "x", "alert_area": []int{4}}, 422, "invalid_field alert_area"},
		{"tile past the end", "PUT", mainPath + "/tiles/6", e.prov, map[string]any{}, 422, "invalid_field index"},
		{"tile not a number", "PUT", mainPath + "/tiles/first", e.prov, map[string]any{}, 422, "invalid_field index"},
		{"camera of the neighbour county", "PUT", countyPath + "/tiles/0", op, map[string]any{"source": map[string]any{"kind": "camera", "id": "xld-dam"}}, 422, "invalid_field source.id"},
		{"unknown camera", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"source": map[string]any{"kind": "camera", "id": "nope"}}, 422, "invalid_field source.id"},
		{"participant without room", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"source": map[string]any{"kind": "participant", "id": "resident-7"}}, 422, "invalid_field source.room_id"},
		{"source and patrol", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"source": map[string]any{"kind": "camera", "id": "bht-dam"},
			"patrol": map[string]any{"camera_ids": []string{"bht-dam", "bht-gate"}, "dwell_s": 10}}, 422, "invalid_field patrol"},
		{"patrol dwell too long", "PATCH", mainPath, e.prov, map[string]any{"patrol": map[string]any{"camera_ids": []string{"bht-dam", "bht-gate"}, "dwell_s": 60}}, 422, "invalid_field patrol.dwell_s"},
		{"patrol of one camera", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"patrol": map[string]any{"camera_ids": []string{"bht-dam"}, "dwell_s": 10}}, 422, "invalid_field patrol.camera_ids"},
		{"patrol with the neighbour's camera", "PATCH", countyPath, op, map[string]any{"patrol": map[string]any{"camera_ids": []string{"bht-dam", "xld-dam"}, "dwell_s": 10}}, 422, "invalid_field patrol.camera_ids"},
		{"stale version", "PATCH", mainPath, e.prov, map[string]any{"name": "x", "version": 7}, 409, "wall_version_conflict"},
		{"stale version of a tile", "PUT", mainPath + "/tiles/0", e.prov, map[string]any{"version": 0}, 409, "wall_version_conflict"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tc.method, tc.path, tc.token, tc.body)
			got := r.errCode()
			if f, _ := r.body["error"].(map[string]any)["field"].(string); f != "" {
				got += " " + f
			}
			if r.status != tc.status || got != tc.want {
				t.Fatalf("%d %q, want %d %q: %s", r.status, got, tc.status, tc.want, r.raw)
			}
			ev.none(tc.name)
		})
	}
	for _, w := range []response{main, county} {
		if now := e.call("GET", "/api/v1/walls/"+w.body["id"].(string), e.prov, nil); !reflect.DeepEqual(now.body, w.body) {
			t.Fatalf("changed by refused requests: %s", now.raw)
		}
	}

	// Lists: the province sees both, the county and its viewer their own.
	for _, tc := range []struct {
		token string
		want  []string
	}{{e.prov, []string{"main", cid}}, {op, []string{cid}}, {e.viewer, []string{cid}}} {
		l := e.call("GET", "/api/v1/walls", tc.token, nil)
		var ids []string
		for _, it := range l.body["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		if l.status != 200 || !reflect.DeepEqual(ids, tc.want) || l.body["item_count"] != float64(len(tc.want)) {
			t.Fatalf("list: %s", l.raw)
		}
	}
	e.mustStatus(e.call("GET", countyPath, e.viewer, nil), 200)

	// Arrange the province's wall.
	steps := []struct {
		name   string
		method string
		path   string
		body   any
		check  func(r response) bool
	}{
		{"layout at its version", "PATCH", mainPath, map[string]any{"layout": "4", "alert_area": []int{0, 3}, "version": 1}, func(r response) bool {
			return r.body["layout"] == "4" && len(r.body["tiles"].([]any)) == 4 && r.body["version"] == 2.0
		}},
		{"a camera", "PUT", mainPath + "/tiles/1", map[string]any{"source": map[string]any{"kind": "camera", "id": "xld-dam"}}, func(r response) bool {
			return strings.Contains(r.raw, `{"source":null},{"source":{"kind":"camera","id":"xld-dam"}},{"source":null}`) && r.body["version"] == 3.0
		}},
		{"a participant", "PUT", mainPath + "/tiles/3", map[string]any{"source": map[string]any{"kind": "participant", "id": "resident-7", "room_id": "hearing-1"}}, func(r response) bool {
			return strings.Contains(r.raw, `{"source":{"kind":"participant","id":"resident-7","room_id":"hearing-1"}}`)
		}},
		{"a tile patrol", "PUT", mainPath + "/tiles/2", map[string]any{"patrol": map[string]any{"camera_ids": []string{"bht-dam", "xld-dam"}, "dwell_s": 10}}, func(r response) bool {
			p, _ := r.body["tiles"].([]any)[2].(map[string]any)["patrol"].(map[string]any)
			return p != nil && p["started_at"] != nil && p["dwell_s"] == 10.0
		}},
		{"the wall's patrol", "PATCH", mainPath, map[string]any{"patrol": map[string]any{"camera_ids": []string{"bht-gate", "bht-dam", "xld-dam"}, "dwell_s": 5}}, func(r response) bool {
			p, _ := r.body["patrol"].(map[string]any)
			return p != nil && len(p["camera_ids"].([]any)) == 3 && p["started_at"] != nil
		}},
		{"renamed, the patrol stays", "PATCH", mainPath, map[string]any{"name": "省防汛指挥大屏"}, func(r response) bool {
			return r.body["name"] == "省防汛指挥大屏" && r.body["patrol"] != nil
		}},
		{"patrol cleared", "PATCH", mainPath, map[string]any{"patrol": nil}, func(r response) bool {
			return r.body["patrol"] == nil && strings.Contains(r.raw, `"patrol":null`)
		}},
		{"tile cleared", "PUT", mainPath + "/tiles/3", map[string]any{"source": nil}, func(r response) bool {
			return r.body["tiles"].([]any)[3].(map[string]any)["source"] == nil && r.body["version"] == 9.0
		}},
		{"smaller layout drops the area past its end", "PATCH", mainPath, map[string]any{"layout": "1"}, func(r response) bool {
			return len(r.body["tiles"].([]any)) == 1 && strings.Contains(r.raw, `"alert_area":[0]`)
		}},
	}
	for _, st := range steps {
		r := e.call(st.method, st.path, e.prov, st.body)
		if r.status != 200 || !st.check(r) {
			t.Fatalf("%s: %d %s", st.name, r.status, r.raw)
		}
		same(st.name, r)
	}
	// An operator arranges the county's wall.
	r := e.call("PUT", countyPath+"/tiles/0", op, map[string]any{"source": map[string]any{"kind": "camera", "id": "bht-gate"}})
	e.mustStatus(r, 200)
	same("operator's tile", r)
	if r.body["updated_by"] != "qj-op" {
		t.Fatalf("operator's tile: %s", r.raw)
	}

	// Delete: the event names the wall only.
	e.mustStatus(e.call("DELETE", mainPath, e.prov, nil), 204)
	if org, data := ev.next(); org != "yn" || !reflect.DeepEqual(data, map[string]any{"id": "main", "deleted": true}) {
		t.Fatalf("delete event: %s %v", org, data)
	}
	e.mustStatus(e.call("GET", mainPath, e.prov, nil), 404)

	// Every change in the audit log, newest first.
	audit := e.call("GET", "/api/v1/audit?action=wall.&target=main", e.prov, nil)
	var actions []string
	for _, it := range audit.body["items"].([]any) {
		entry := it.(map[string]any)
		if entry["actor"] != "admin" || entry["org_id"] != "yn" {
			t.Fatalf("audit entry: %v", entry)
		}
		actions = append(actions, entry["action"].(string))
	}
	want := "wall.delete,wall.update,wall.tile,wall.update,wall.update,wall.update,wall.tile,wall.tile,wall.tile,wall.update,wall.create"
	if strings.Join(actions, ",") != want {
		t.Fatalf("audit: %v", actions)
	}
	trail := e.call("GET", "/api/v1/audit?action=wall.tile&target="+cid, e.qj, nil)
	if trail.body["item_count"] != 1.0 || !strings.Contains(trail.raw, `"source":{"id":"bht-gate","kind":"camera"}`) {
		t.Fatalf("operator's audit: %s", trail.raw)
	}
}
