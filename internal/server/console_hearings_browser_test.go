package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// The hearing officer's side of a remote petition hearing in the console,
// in headless Chromium, as the demo admin: the 听证 page in the menu, a
// hearing scheduled from a petition (made through the API) with a
// department's representative, its link shown once as a whole URL; the
// hearing in today's list; the petitioner (a Pion client, by that very
// link: opened on one device, consent, the lobby) waiting, seen as a badge
// in the list and in the hearing's lobby with the link marked used, the
// petition whole beside the video (the meeting page embedded where the
// console's and the meeting page's policies allow a frame, else offered in
// a window); the link allowed on another device, withdrawn and issued anew
// (shown once; the old one refused); admitted from the console, the hearing
// under way and recorded; a note; the end with an outcome; the signed
// record valid, the recordings complete with their checksums, one played
// in the page; the page in English. Screenshots: console-hearing*.png in
// test-artifacts/console.
func TestConsoleHearingsInBrowser(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	wsURL := "ws://" + s.HTTPAddr() + "/rtc/signal"
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	admin := login["token"].(string)
	pet := mustPost(t, base, admin, "/api/v1/petitions", map[string]any{"org_id": "qj", "subject": "安置房漏水",
		"description": "新房入住三个月，屋顶漏水，多次报修未处理。",
		"petitioner":  map[string]any{"name": "张三丰", "phone": "13812345678", "id_number": "11010519491231002X"}}, 201)
	petID := pet["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	media, err := meetpeer.MakeMedia(ctx, t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}

	// The petitioner's phone: the link the page showed, opened, consented
	// to, and the lobby; once admitted, camera and microphone.
	var mu sync.Mutex
	var peers []*meetpeer.Peer
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range peers {
			p.Close()
		}
	}()
	triggers := http.NewServeMux()
	triggers.HandleFunc("POST /resident", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			URL string `json:"url"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u, err := url.Parse(in.URL)
		if err != nil || "http://"+u.Host != base || !strings.HasPrefix(u.Path, "/h/") {
			http.Error(w, "not this server's hearing link: "+in.URL, http.StatusBadRequest)
			return
		}
		token := strings.TrimPrefix(u.Path, "/h/")
		grant, err := residentJoins(base, token)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p, err := meetpeer.Dial(wsURL, grant)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		mu.Lock()
		peers = append(peers, p)
		mu.Unlock()
		if _, err := p.Wait(10*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeLobby && m.State == "waiting" }); err != nil {
			http.Error(w, "not in the lobby: "+err.Error(), http.StatusBadGateway)
			return
		}
		go func() {
			// Closed at the test's end: then nothing more is told to t.
			m, err := p.Wait(90*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeJoined || m.Type == "closed" })
			if m.Type == "closed" {
				return
			}
			if err != nil {
				t.Errorf("the petitioner was never admitted: %v", err)
				return
			}
			if err := p.Publish(media); err != nil {
				t.Errorf("the petitioner's media: %v", err)
			}
		}()
		w.WriteHeader(http.StatusNoContent)
	})
	trigger := httptest.NewServer(triggers)
	defer trigger.Close()

	runConsole(t, node, chromium, scripts, 120*time.Second,
		"LOOKOUT_SCENARIO=hearings",
		"LOOKOUT_BASE="+base,
		"LOOKOUT_USER=admin", "LOOKOUT_PASSWORD=admin-password", "LOOKOUT_ORG_NAME=全国演示指挥中心",
		"LOOKOUT_PETITION="+petID,
		"LOOKOUT_TRIGGER="+trigger.URL,
		"LOOKOUT_SHOTS="+artifactsDir(t),
	)

	// What the console did, as the server keeps it.
	_, list := getJSON(t, "GET", base+"/api/v1/hearings?petition="+petID, admin, nil)
	items, _ := list["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("the petition's hearings: %v", list)
	}
	id := items[0].(map[string]any)["id"].(string)
	h := mustGet(t, base, admin, "/api/v1/hearings/"+id)
	others, _ := json.Marshal(h["others"])
	notes, _ := h["notes"].([]any)
	if h["state"] != "ended" || h["outcome"] != "resolved" || h["outcome_note"] != "住建局一周内上门维修" || h["signed"] != true ||
		string(others) != `[{"name":"王工","role":"县住建局"}]` || len(notes) != 1 || h["consent_at"] == nil || h["admitted_at"] == nil {
		t.Fatalf("the hearing after the run: %v", h)
	}
	recs, _ := h["recordings"].([]any)
	if len(recs) < 2 {
		t.Fatalf("recordings: %v", recs)
	}
	// The petitioner's camera and microphone, and the officer's where the
	// meeting page could be embedded (the officer joined from the frame).
	residents := 0
	for _, r := range recs {
		r := r.(map[string]any)
		if sha, _ := r["sha256"].(string); r["state"] != "complete" || len(sha) != 64 || (r["identity"] != "resident" && r["identity"] != "admin") {
			t.Errorf("recording: %v", r)
		}
		if r["identity"] == "resident" {
			residents++
		}
	}
	if residents != 2 {
		t.Errorf("%d recordings of the petitioner: %v", residents, recs)
	}
	// Every file decodes whole, the officer's simulcast camera (recorded
	// from its top layer, moving to it as the browser's layers come) too.
	for _, r := range recs {
		r := r.(map[string]any)
		file := filepath.Join(t.TempDir(), r["id"].(string)+".webm")
		download(t, base+"/api/v1/hearings/"+id+"/recordings/"+r["id"].(string), admin, file)
		// Decoded in the file's own time base: in ffmpeg's default, a
		// frame's rate, two frames a browser sent 10 ms apart would
		// collide.
		out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s/%s does not decode cleanly: %v %s", r["identity"], r["source"], err, out)
		}
		p := ffprobe(t, file)
		t.Logf("%s/%s: %s %s s %dx%d", r["identity"], r["source"], p.Streams[0].CodecName, p.Format.Duration, p.Streams[0].Width, p.Streams[0].Height)
	}
	if rec := mustGet(t, base, admin, "/api/v1/hearings/"+id+"/record"); rec["valid"] != true {
		t.Errorf("the record: %v", rec)
	}
	if p := mustGet(t, base, admin, "/api/v1/petitions/"+petID); p["state"] != "heard" {
		t.Errorf("the petition after the hearing: %v", p["state"])
	}
}

// residentJoins opens a hearing link on a new device, consents and returns
// the lobby's join token (errors, not t.Fatal: it runs in a handler).
func residentJoins(base, token string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(path string, body any) (map[string]any, error) {
		js, _ := json.Marshal(body)
		resp, err := c.Post(base+path, "application/json", bytes.NewReader(js))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out, nil
	}
	if _, err := post("/api/v1/hearing-link/open", map[string]any{"token": token}); err != nil {
		return "", err
	}
	g, err := post("/api/v1/hearing-link/join", map[string]any{"token": token, "consent": true})
	if err != nil {
		return "", err
	}
	tok, _ := g["token"].(string)
	if tok == "" {
		return "", fmt.Errorf("join: no token in %v", g)
	}
	return tok, nil
}
