package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

func TestStepsAreAuditedAndScoped(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-admin", "org_id": "qj", "role": "admin", "password": "qiaojia-pass"}), 201)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "ys-admin", "org_id": "ys", "role": "admin", "password": "yongshan-pass"}), 201)
	e.mustStatus(e.do("PATCH", "/api/v1/users/ys-admin", prov, map[string]any{"password": "a-new-secret-pass"}), 200)
	e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "qj-admin", "password": "wrong-wrong"})
	qj := e.login("qj-admin", "qiaojia-pass")
	e.mustStatus(e.do("POST", "/api/v1/sites", qj, map[string]any{"id": "bht", "name": "白鹤滩", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}), 201)
	e.mustStatus(e.do("POST", "/api/v1/devices", qj, map[string]any{"id": "g1", "kind": "water_level", "name": "g1", "site_id": "bht", "lat": 27.2, "lon": 102.9}), 201)
	e.mustStatus(e.do("POST", "/api/v1/devices/g1/credentials", qj, nil), 200)

	all := e.do("GET", "/api/v1/audit?limit=1000", prov, nil)
	e.mustStatus(all, 200)
	var actions []string
	for _, it := range all.body["items"].([]any) {
		m := it.(map[string]any)
		actions = append(actions, m["actor"].(string)+" "+m["action"].(string)+" "+m["target"].(string)+" "+m["result"].(string))
	}
	got := strings.Join(actions, "\n")
	for _, want := range []string{
		"admin auth.login admin ok", "admin user.create qj-admin ok", "admin user.update ys-admin ok",
		"qj-admin auth.login qj-admin bad_credentials", "qj-admin auth.login qj-admin ok",
		"qj-admin site.create bht ok", "qj-admin device.create g1 ok", "qj-admin device.credentials.rotate g1 ok",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q; has:\n%s", want, got)
		}
	}
	if strings.Contains(all.raw, "a-new-secret-pass") || strings.Contains(all.raw, "wrong-wrong") {
		t.Fatal("a password reached the audit log")
	}
	// The county admin sees the county's entries only.
	county := e.do("GET", "/api/v1/audit?limit=1000", qj, nil)
	if strings.Contains(county.raw, "ys-admin") || !strings.Contains(county.raw, "device.credentials.rotate") {
		t.Fatalf("county view: %s", county.raw)
	}
	if r := e.do("GET", "/api/v1/audit?action=device.&limit=1000", qj, nil); r.body["item_count"] != 2.0 {
		t.Fatalf("prefix filter: %s", r.raw)
	}
	e.mustStatus(e.do("GET", "/api/v1/audit?limit=0", prov, nil), 422)

	// The chain verifies.
	db, err := sqldb.OpenFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := audit.Verify(context.Background(), db); err != nil || n < 8 {
		t.Fatalf("verify: %d %v", n, err)
	}
}
