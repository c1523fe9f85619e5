package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// lampSite makes a community with n streetlights and a water gauge, owned
// by org, and returns the lamps' ids.
func (e *env) lampSite(token, site, org string, n int) []string {
	e.t.Helper()
	e.mustStatus(e.do("POST", "/api/v1/sites", token, map[string]any{"id": site, "name": site + " 安置点", "kind": "community", "org_id": org, "lat": 26.9, "lon": 102.9}), 201)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-lamp-%d", site, i)
		e.mustStatus(e.do("POST", "/api/v1/devices", token, map[string]any{"id": id, "kind": "streetlight", "name": id, "site_id": site, "lat": 26.9, "lon": 102.9}), 201)
		ids = append(ids, id)
	}
	e.mustStatus(e.do("POST", "/api/v1/devices", token, map[string]any{"id": site + "-gauge", "kind": "water_level", "name": "g", "site_id": site, "lat": 26.9, "lon": 102.9}), 201)
	return ids
}

func (e *env) setOnline(ids ...string) {
	for _, id := range ids {
		if err := e.presence.Set(context.Background(), devices.ID(id), devices.StateOnline); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestDeviceUpdateDisableAndDelete(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	lamps := e.lampSite(prov, "qj-a", "qj", 1)
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "ys-b", "name": "永善", "kind": "street", "org_id": "ys", "lat": 28, "lon": 103.6}), 201)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-admin", "org_id": "qj", "role": "admin", "password": "qiaojia-pass"}), 201)
	qj := e.login("qj-admin", "qiaojia-pass")
	lamp := lamps[0]

	r := e.do("PATCH", "/api/v1/devices/"+lamp, qj, map[string]any{"name": "  一号路灯 ", "meta": map[string]string{"pole": "A-01"}, "lat": 26.91})
	e.mustStatus(r, 200)
	if r.body["name"] != "一号路灯" || r.body["lat"] != 26.91 || r.body["meta"].(map[string]any)["pole"] != "A-01" || r.body["disabled"] != false {
		t.Fatalf("patched: %s", r.raw)
	}
	for _, tt := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"lat": 95}, 422, "lat"},
		{map[string]any{"name": ""}, 422, "name"},
		{map[string]any{"site_id": "nowhere"}, 422, "site_id"},
		{map[string]any{"site_id": "ys-b"}, 422, "site_id"}, // another county's site, for the county
		{map[string]any{"kind": "generic"}, 400, ""},        // the kind is fixed at creation
	} {
		r := e.do("PATCH", "/api/v1/devices/"+lamp, qj, tt.body)
		if r.status != tt.status || (tt.field != "" && !strings.Contains(r.raw, `"field":"`+tt.field+`"`)) {
			t.Errorf("%v: %d %s", tt.body, r.status, r.raw)
		}
	}
	e.mustStatus(e.do("PATCH", "/api/v1/devices/nope", qj, map[string]any{"name": "x"}), 404)

	// The province moves it to the other county's site: it changes hands.
	r = e.do("PATCH", "/api/v1/devices/"+lamp, prov, map[string]any{"site_id": "ys-b"})
	if r.status != 200 || r.body["org_id"] != "ys" || r.body["site_id"] != "ys-b" {
		t.Fatalf("moved: %s", r.raw)
	}
	e.mustStatus(e.do("GET", "/api/v1/devices/"+lamp, qj, nil), 403)
	e.mustStatus(e.do("PATCH", "/api/v1/devices/"+lamp, prov, map[string]any{"site_id": "qj-a"}), 200)

	// A queued command waits; disabling the lamp fails it with the reason,
	// refuses its MQTT login, and refuses new commands with 409.
	r = e.do("POST", "/api/v1/devices/"+lamp+"/commands", qj, map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "queue": true})
	e.mustStatus(r, 202)
	queued := r.body["id"].(string)
	r = e.do("POST", "/api/v1/devices", prov, map[string]any{"id": "qj-a-lamp-x", "kind": "streetlight", "name": "x", "site_id": "qj-a", "lat": 26.9, "lon": 102.9})
	pw := r.body["mqtt"].(map[string]any)["password"].(string)
	if _, ok := e.devices.AuthenticateDevice("qj-a-lamp-x", pw); !ok {
		t.Fatal("an enabled device cannot log in")
	}
	e.mustStatus(e.do("PATCH", "/api/v1/devices/qj-a-lamp-x", qj, map[string]any{"disabled": true}), 200)
	if _, ok := e.devices.AuthenticateDevice("qj-a-lamp-x", pw); ok {
		t.Fatal("a disabled device still logs in")
	}
	if e.devices.DeviceMayAccess("qj-a-lamp-x", devices.TopicRoot+"qj-a-lamp-x/telemetry", true) {
		t.Fatal("a disabled device may still publish")
	}
	r = e.do("PATCH", "/api/v1/devices/"+lamp, qj, map[string]any{"disabled": true})
	if r.status != 200 || r.body["disabled"] != true {
		t.Fatalf("disable: %s", r.raw)
	}
	waitState(t, e, qj, queued, "failed", "device disabled")
	r = e.do("POST", "/api/v1/devices/"+lamp+"/commands", qj, map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "queue": true})
	if r.status != 409 || r.errCode() != "device_disabled" {
		t.Fatalf("command to a disabled device: %d %s", r.status, r.raw)
	}
	e.mustStatus(e.do("PATCH", "/api/v1/devices/"+lamp, qj, map[string]any{"disabled": false}), 200)
	e.setOnline(lamp)
	e.mustStatus(e.do("POST", "/api/v1/devices/"+lamp+"/commands", qj, map[string]any{"name": "set_power", "params": map[string]any{"on": true}}), 202)

	// (The audit entry of the move to ys-b belongs to ys: the county does
	// not see it below.)

	// Delete: gone from the registry, its login refused; its commands and
	// the audit trail stay.
	e.mustStatus(e.do("DELETE", "/api/v1/devices/qj-a-lamp-x", qj, nil), 204)
	e.mustStatus(e.do("GET", "/api/v1/devices/qj-a-lamp-x", qj, nil), 404)
	e.mustStatus(e.do("DELETE", "/api/v1/devices/qj-a-lamp-x", qj, nil), 404)
	if _, ok := e.devices.AuthenticateDevice("qj-a-lamp-x", pw); ok {
		t.Fatal("a deleted device still logs in")
	}
	e.mustStatus(e.do("GET", "/api/v1/commands/"+queued, qj, nil), 200)
	r = e.do("GET", "/api/v1/audit?action=device.", qj, nil)
	var actions []string
	for _, it := range r.body["items"].([]any) {
		actions = append(actions, it.(map[string]any)["action"].(string))
	}
	if got := strings.Join(actions, ","); !strings.HasPrefix(got, "device.delete,device.update,device.update,device.update,device.create,device.update,device.update") {
		t.Fatalf("audit: %s", got)
	}
}

// waitState polls a command until it reaches state (with the error text,
// if given) or fails the test after 5 s.
func waitState(t *testing.T, e *env, token, id, state, errText string) map[string]any {
	t.Helper()
	var last string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r := e.do("GET", "/api/v1/commands/"+id, token, nil)
		if r.body["state"] == state && (errText == "" || r.body["error"] == errText) {
			return r.body
		}
		last = r.raw
	}
	t.Fatalf("command %s never %s (%s): %s", id, state, errText, last)
	return nil
}

func TestGroupCommands(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	lamps := e.lampSite(prov, "qj-a", "qj", 3)
	ysLamps := e.lampSite(prov, "ys-a", "ys", 1)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-cmd", "org_id": "qj", "role": "commander", "password": "qiaojia-pass"}), 201)
	qj := e.login("qj-cmd", "qiaojia-pass")
	e.setOnline(lamps[0], lamps[1])
	e.mustStatus(e.do("PATCH", "/api/v1/devices/"+lamps[1], prov, map[string]any{"disabled": true}), 200)

	// Every streetlight of the site (the gauge takes no set_brightness):
	// one is sent, one disabled, one offline.
	r := e.do("POST", "/api/v1/command-groups", qj, map[string]any{"site_id": "qj-a", "name": "set_brightness", "params": map[string]any{"level": 30}})
	e.mustStatus(r, 202)
	sum := r.body["summary"].(map[string]any)
	if sum["devices"] != 3.0 || sum["pending"] != 1.0 || sum["refused"] != 2.0 || sum["done"] != false || !strings.HasPrefix(r.header.Get("Location"), "/api/v1/command-groups/grp_") {
		t.Fatalf("group: %s", r.raw)
	}
	codes := map[string]string{}
	for _, m := range r.body["results"].([]any) {
		m := m.(map[string]any)
		if ref, ok := m["refused"].(map[string]any); ok {
			codes[m["device_id"].(string)] = ref["code"].(string)
		} else {
			codes[m["device_id"].(string)] = m["command"].(map[string]any)["state"].(string)
		}
	}
	if codes[lamps[0]] != "pending" || codes[lamps[1]] != "device_disabled" || codes[lamps[2]] != "device_offline" {
		t.Fatalf("results: %v", codes)
	}
	group := r.body["id"].(string)
	g := e.do("GET", "/api/v1/command-groups/"+group, qj, nil)
	if g.status != 200 || len(g.body["results"].([]any)) != 1 || g.body["name"] != "set_brightness" {
		t.Fatalf("group read: %s", g.raw)
	}

	// A list of devices, queued: unknown and out-of-scope ones are refused
	// one by one; the others wait for their devices.
	r = e.do("POST", "/api/v1/command-groups", qj, map[string]any{"device_ids": []string{lamps[2], "nope", ysLamps[0], lamps[2]},
		"name": "set_power", "params": map[string]any{"on": false}, "queue": true})
	e.mustStatus(r, 202)
	sum = r.body["summary"].(map[string]any)
	if sum["devices"] != 3.0 || sum["pending"] != 1.0 || sum["refused"] != 2.0 {
		t.Fatalf("list group: %s", r.raw)
	}
	if !strings.Contains(r.raw, `"code":"device_not_found"`) || !strings.Contains(r.raw, `"code":"out_of_scope"`) {
		t.Fatalf("list group refusals: %s", r.raw)
	}
	// The province sees the group; another county does not.
	e.mustStatus(e.do("GET", "/api/v1/command-groups/"+r.body["id"].(string), prov, nil), 200)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "ys-cmd", "org_id": "ys", "role": "commander", "password": "yongshan-pass"}), 201)
	ys := e.login("ys-cmd", "yongshan-pass")
	e.mustStatus(e.do("GET", "/api/v1/command-groups/"+group, ys, nil), 404)
	e.mustStatus(e.do("GET", "/api/v1/command-groups/grp_nope", prov, nil), 404)

	for _, tt := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"site_id": "qj-a", "name": "set_brightness", "params": map[string]any{"level": 101}, "queue": true}, 422, "params.level"},
		{map[string]any{"site_id": "qj-a", "name": "launch"}, 422, "site_id"},
		{map[string]any{"name": "set_power", "params": map[string]any{"on": true}}, 422, "site_id"},
		{map[string]any{"site_id": "qj-a", "device_ids": lamps, "name": "set_power"}, 422, "site_id"},
		{map[string]any{"site_id": "qj-a", "kind": "toaster", "name": "set_power"}, 422, "kind"},
		{map[string]any{"device_ids": []string{lamps[0]}, "name": "set_power", "params": map[string]any{}}, 422, "params.on"},
		{map[string]any{"site_id": "nowhere", "name": "set_power"}, 404, ""},
		{map[string]any{"site_id": "ys-a", "name": "set_power"}, 403, ""},
		{map[string]any{"site_id": "qj-a", "name": "set_power", "targets": 1}, 400, ""},
	} {
		r := e.do("POST", "/api/v1/command-groups", qj, tt.body)
		if r.status != tt.status || (tt.field != "" && !strings.Contains(r.raw, `"field":"`+tt.field+`"`)) {
			t.Errorf("%v: %d %s", tt.body, r.status, r.raw)
		}
	}
	var sends, groups, listed int
	for _, it := range e.do("GET", "/api/v1/audit?action=command.", prov, nil).body["items"].([]any) {
		switch it := it.(map[string]any); it["action"] {
		case "command.send":
			sends++
		case "command.group":
			groups++
			listed += len(it["detail"].(map[string]any)["commands"].(map[string]any))
		}
	}
	// The offline refusal is audited as it is for one device; the two
	// commands stored are listed in their group's entry, one of each of
	// the two group requests.
	if sends != 1 || groups != 2 || listed != 2 {
		t.Fatalf("audit: %d sends, %d groups listing %d commands", sends, groups, listed)
	}
}

// A group larger than one chunk of the journal: its commands are stored a
// chunk at a time, each handed to the publishers once stored. Every online
// lamp's command reaches the broker, no offline lamp's does, each result
// names its own device, and following the group lists them all.
func TestLargeGroupIsStoredInChunks(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	lamps := e.lampSite(prov, "qj-a", "qj", 300)
	online := map[devices.ID]bool{}
	for i, id := range lamps {
		if i%3 != 0 { // every third is offline, so refusals fall between the commands
			e.setOnline(id)
			online[devices.ID(id)] = true
		}
	}
	r := e.do("POST", "/api/v1/command-groups", prov, map[string]any{"site_id": "qj-a", "name": "set_brightness", "params": map[string]any{"level": 40}})
	e.mustStatus(r, 202)
	sum := r.body["summary"].(map[string]any)
	if sum["devices"] != 300.0 || sum["pending"] != 200.0 || sum["refused"] != 100.0 {
		t.Fatalf("group: %v", sum)
	}
	ids := map[string]bool{}
	for _, m := range r.body["results"].([]any) {
		m := m.(map[string]any)
		dev := m["device_id"].(string)
		cmd, sent := m["command"].(map[string]any)
		if sent != online[devices.ID(dev)] {
			t.Fatalf("%s (online %v): %v", dev, online[devices.ID(dev)], m)
		}
		if sent {
			if cmd["device_id"] != dev || ids[cmd["id"].(string)] {
				t.Fatalf("%s: command %v", dev, cmd)
			}
			ids[cmd["id"].(string)] = true
		}
	}
	// Handed to the (refusing) broker: every online lamp, and only those.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tried := e.broker.triedDevices()
		missing := 0
		for id := range online {
			if tried[id] == 0 {
				missing++
			}
		}
		for id := range tried {
			if !online[id] {
				t.Fatalf("a publish was tried for offline %s", id)
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d online lamps' commands never reached the broker", missing)
		}
	}
	g := e.do("GET", "/api/v1/command-groups/"+r.body["id"].(string), prov, nil)
	if g.status != 200 || len(g.body["results"].([]any)) != 200 || g.body["summary"].(map[string]any)["pending"] != 200.0 {
		t.Fatalf("group read: %d %v", g.status, g.body["summary"])
	}
}

func TestDesiredAgainstReported(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	lamp := e.lampSite(prov, "qj-a", "qj", 1)[0]
	if r := e.do("GET", "/api/v1/devices/"+lamp, prov, nil); len(r.body["desired"].(map[string]any)) != 0 {
		t.Fatalf("desired before any command: %s", r.raw)
	}
	e.mustStatus(e.do("POST", "/api/v1/devices/"+lamp+"/commands", prov, map[string]any{"name": "set_brightness", "params": map[string]any{"level": 80}, "queue": true}), 202)
	e.mustStatus(e.do("POST", "/api/v1/devices/"+lamp+"/commands", prov, map[string]any{"name": "set_brightness", "params": map[string]any{"level": 30}, "queue": true}), 202)
	e.mustStatus(e.do("POST", "/api/v1/devices/"+lamp+"/commands", prov, map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "queue": true}), 202)
	now := time.Now().UnixMilli()
	if err := e.store.Write(context.Background(), []tsdb.Point{
		{Device: lamp, Metric: "brightness", TS: now, Value: 80},
		{Device: lamp, Metric: "on", TS: now, Value: 1},
	}); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/api/v1/devices/"+lamp, prov, nil)
	desired := r.body["desired"].(map[string]any)
	b, on := desired["brightness"].(map[string]any), desired["on"].(map[string]any)
	if b["value"] != 30.0 || b["reported"] != 80.0 || b["in_sync"] != false || b["command"].(map[string]any)["state"] != "pending" {
		t.Fatalf("brightness: %v", b)
	}
	if on["value"] != 1.0 || on["reported"] != 1.0 || on["in_sync"] != true {
		t.Fatalf("on: %v", on)
	}
	if err := e.store.Write(context.Background(), []tsdb.Point{{Device: lamp, Metric: "brightness", TS: now + 1000, Value: 30}}); err != nil {
		t.Fatal(err)
	}
	b = e.do("GET", "/api/v1/devices/"+lamp, prov, nil).body["desired"].(map[string]any)["brightness"].(map[string]any)
	if b["reported"] != 30.0 || b["in_sync"] != true {
		t.Fatalf("brightness after the lamp followed: %v", b)
	}
}
