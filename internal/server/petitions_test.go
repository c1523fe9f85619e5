package server

import (
	"testing"
)

// A petition's personal data, stored encrypted under a key derived from
// the server's, reads whole again after a restart; the petition concerns a
// site of the caller's subtree only.
func TestPetitionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base) // site bht in qj
	body := map[string]any{"org_id": "qj", "site_id": "bht", "subject": "补偿款未到账", "description": "搬迁补偿第二期款项至今未发放。",
		"petitioner": map[string]any{"name": "王五", "phone": "13987654321", "id_number": "11010519491231002X"}}
	p := mustPost(t, base, tok, "/api/v1/petitions", body, 201)
	body["site_id"] = "xiangzhi-port" // a demo site of another province's county: outside qj
	if st, _ := getJSON(t, "POST", base+"/api/v1/petitions", tok, body); st != 422 {
		t.Fatalf("a site outside the petition's organisation: %d", st)
	}
	stop(t, s)

	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	st, got := getJSON(t, "GET", base+"/api/v1/petitions/"+p["id"].(string), login["token"].(string), nil)
	who, _ := got["petitioner"].(map[string]any)
	if st != 200 || who["name"] != "王五" || who["id_number"] != "11010519491231002X" || who["masked"] == true {
		t.Fatalf("after the restart: %d %v", st, got)
	}
}
