package server

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// A resident joins a remote petition hearing from a phone-sized Chromium
// (fake camera and microphone) by the hearing's link, and the officer
// hears them from the meeting page (tests/browser/hearing.mjs): the
// notice with the camera's preview, the consent, the lobby, the
// admission, two-way video with frames advancing, audio only while the
// server pauses the video, a signaling drop recovered without the lobby,
// the end; and the link refused, each with its own page and nothing of
// the hearing, on a second phone, forged, not open yet and revoked; the
// instructions when the camera is not allowed; a resident of another
// hearing turned away from its lobby, and staying away. The two speed figures
// of the issue come from the pages' own performance marks: from opening
// the link to the preview's first frame, and from the admission to video
// both ways. Screenshots go to test-artifacts/console (hearing-*.png).
func TestHearingPageInBrowser(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	admin, _ := provision(t, base) // the site bht in qj

	const subject = "安置点饮水管道老化"
	pet := mustPost(t, base, admin, "/api/v1/petitions", map[string]any{"org_id": "qj", "site_id": "bht", "subject": subject,
		"description": "安置点自来水管道锈蚀，水质发黄，多次反映未解决。",
		"petitioner":  map[string]any{"name": "张三丰", "phone": "13812345678", "id_number": "11010519491231002X"}}, 201)
	petID, _ := pet["id"].(string)
	schedule := func(at time.Time) (hearing map[string]any, path string) {
		b := mustPost(t, base, admin, "/api/v1/petitions/"+petID+"/hearings", map[string]any{"starts_at": at.UTC().Format(time.RFC3339)}, 201)
		hearing, _ = b["hearing"].(map[string]any)
		link, _ := b["link"].(map[string]any)
		path, _ = link["path"].(string)
		if hearing["id"] == nil || !strings.HasPrefix(path, "/h/") {
			t.Fatalf("schedule: %v", b)
		}
		return hearing, path
	}
	hearing, link := schedule(time.Now())
	_, later := schedule(time.Now().Add(3 * time.Hour))
	turnedAway, rejectLink := schedule(time.Now())
	hid := hearing["id"].(string)
	host := mustPost(t, base, admin, "/api/v1/hearings/"+hid+"/host-token", nil, 201)
	officerURL := base + "/meet/#" + url.Values{"room": {host["room_id"].(string)}, "token": {host["token"].(string)}}.Encode()

	// What the notice shows: the petitioner masked (as in the list), the
	// organisation's name.
	_, list := getJSON(t, "GET", base+"/api/v1/petitions", admin, nil)
	items, _ := list["items"].([]any)
	var masked string
	for _, it := range items {
		if p, _ := it.(map[string]any); p["id"] == petID {
			who, _ := p["petitioner"].(map[string]any)
			masked, _ = who["name"].(string)
		}
	}
	_, org := getJSON(t, "GET", base+"/api/v1/orgs/qj", admin, nil)
	orgName, _ := org["name"].(string)
	if !strings.HasPrefix(masked, "张") || strings.Contains(masked, "三丰") || orgName == "" {
		t.Fatalf("petitioner %q, organisation %v", masked, org)
	}

	shots := artifactsDir(t)
	var out struct {
		Screenshots []string `json:"screenshots"`
	}
	res := runBrowserScript(t, node, chromium, scripts, "hearing.mjs", 120*time.Second, &out,
		"LOOKOUT_BASE="+base, "LOOKOUT_ADMIN_TOKEN="+admin, "LOOKOUT_HEARING="+hid,
		"LOOKOUT_LINK="+link, "LOOKOUT_LATER_LINK="+later, "LOOKOUT_OFFICER_URL="+officerURL,
		"LOOKOUT_REJECT_HEARING="+turnedAway["id"].(string), "LOOKOUT_REJECT_LINK="+rejectLink,
		"LOOKOUT_SUBJECT="+subject, "LOOKOUT_ORG_NAME="+orgName, "LOOKOUT_PETITIONER="+masked,
		"LOOKOUT_SHOTS="+shots)
	t.Logf("screenshots: %v", out.Screenshots)

	// The two figures (docs/BENCHMARKS.md): from opening the link
	// to the preview (target under 2 s), from the admission to video both
	// ways (under 1 s), on loopback. Printed as measured, not asserted (a
	// loaded machine under the race detector is no measurement); that
	// they were measured is.
	preview, twoWay := res.Figures["link_to_preview_ms"], res.Figures["admitted_to_two_way_video_ms"]
	fmt.Printf("hearing page: link to preview %.0f ms; admission to two-way video %.0f ms (officer's video on the phone %.0f ms, the resident's at the officer %.0f ms; from the admit request %.0f ms)\n",
		preview, twoWay, res.Figures["admitted_to_officer_video_ms"], res.Figures["admitted_to_resident_video_at_officer_ms"], res.Figures["admit_request_to_two_way_video_ms"])
	if preview <= 0 || twoWay <= 0 {
		t.Errorf("figures not measured: link to preview %.0f ms, admission to two-way video %.0f ms", preview, twoWay)
	}
	for _, sh := range out.Screenshots {
		if fi, err := os.Stat(sh); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", sh, err)
		}
	}

	// The server's side: consent, admission and end kept; the refused
	// links audited (a forged one names no hearing and is only counted).
	_, got := getJSON(t, "GET", base+"/api/v1/hearings/"+hid, admin, nil)
	if got["state"] != "ended" || got["consent_at"] == nil || got["admitted_at"] == nil || got["outcome"] != "resolved" {
		t.Errorf("hearing after the run: %v", got)
	}
	_, audit := getJSON(t, "GET", base+"/api/v1/audit?action=hearing.link_refused&target="+hid, admin, nil)
	results := map[string]bool{}
	entries, _ := audit["items"].([]any)
	for _, e := range entries {
		r, _ := e.(map[string]any)["result"].(string)
		results[r] = true
	}
	for _, want := range []string{"link_other_device", "link_revoked"} {
		if !results[want] {
			t.Errorf("no audit of the %s refusal: %v", want, audit)
		}
	}
}
