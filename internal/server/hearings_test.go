package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// device is a resident's phone: a browser with its own cookies.
type device struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newDevice(t *testing.T, base string) *device {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &device{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// post posts to the link's endpoints: the status, the body.
func (d *device) post(path string, body any) (int, map[string]any) {
	d.t.Helper()
	js, _ := json.Marshal(body)
	resp, err := d.client.Post(d.base+path, "application/json", bytes.NewReader(js))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// ffprobe describes a media file.
type probe struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type,width,height", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A remote hearing from end to end, with pion clients sending real VP8
// and Opus: the officer schedules it and gets the resident's link; the
// link's refusals (forged, another device until the officer allows one,
// no consent, revoked, expired; none of which opens the console); the
// resident waits in the lobby, the officer sees it and admits them, and
// they see each other; the resident's phone dies and the same link brings
// them back into the same hearing; the officer ends it with an outcome.
// Then every participant source has a finished recording (WebM, its
// codec, size and duration checked with ffprobe, its SHA-256 as listed),
// the resident's with the gap of the drop kept as a pause, the record is
// signed, the petition is heard, and each step is in the audit log.
func TestHearingWithPionClients(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffmpeg and ffprobe are needed (make test installs them)")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	wsURL := "ws://" + s.HTTPAddr() + "/rtc/signal"
	tok, _ := provision(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	media, err := meetpeer.MakeMedia(ctx, t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}

	pet := mustPost(t, base, tok, "/api/v1/petitions", map[string]any{"org_id": "qj", "subject": "安置房漏水", "description": "安置房屋顶漏水，多次报修未果。",
		"petitioner": map[string]any{"name": "李四", "phone": "13812345678", "id_number": "11010519491231002X"}}, 201)
	sched := mustPost(t, base, tok, "/api/v1/petitions/"+pet["id"].(string)+"/hearings",
		map[string]any{"starts_at": time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)}, 201)
	h := sched["hearing"].(map[string]any)
	id := h["id"].(string)
	link := sched["link"].(map[string]any)["path"].(string)
	linkToken := strings.TrimPrefix(link, "/h/")
	if !strings.HasPrefix(link, "/h/") || h["state"] != "scheduled" {
		t.Fatalf("scheduled: %v", sched)
	}
	if _, p := getJSON(t, "GET", base+"/api/v1/petitions/"+pet["id"].(string), tok, nil); p["state"] != "scheduled" {
		t.Fatalf("the petition: %v", p["state"])
	}

	// Refusals, each saying what it is and nothing of the hearing.
	phone := newDevice(t, base)
	for _, c := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"forged", linkToken[:len(linkToken)-4] + "AAAA", 401, "link_invalid"},
		{"garbage", "not-a-token", 401, "link_invalid"},
		{"empty", "", 401, "link_invalid"},
	} {
		st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": c.token})
		if st != c.status || errorCode(body) != c.code || body["notice"] != nil {
			t.Errorf("%s link: %d %v", c.name, st, body)
		}
	}
	expired, err := s.signer.IssueHearingLink(id, "old", time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": expired}); st != 401 || errorCode(body) != "link_expired" {
		t.Errorf("expired link: %d %v", st, body)
	}
	// The link is no console token, nor is what it is exchanged for.
	if st, _ := getJSON(t, "GET", base+"/api/v1/petitions", linkToken, nil); st != 401 {
		t.Errorf("the link opened the console API: %d", st)
	}

	st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": linkToken})
	notice, _ := body["notice"].(map[string]any)
	if st != 200 || notice["subject"] != "安置房漏水" || notice["petitioner"] != "李*" {
		t.Fatalf("open: %d %v", st, body)
	}
	other := newDevice(t, base)
	if st, body := other.post("/api/v1/hearing-link/open", map[string]any{"token": linkToken}); st != 403 || errorCode(body) != "link_other_device" {
		t.Fatalf("a second device: %d %v", st, body)
	}
	if st, body := phone.post("/api/v1/hearing-link/join", map[string]any{"token": linkToken}); st != 422 || errorCode(body) != "consent_required" {
		t.Fatalf("join without consent: %d %v", st, body)
	}
	st, grant := phone.post("/api/v1/hearing-link/join", map[string]any{"token": linkToken, "consent": true})
	if st != 200 || grant["room_id"] != id {
		t.Fatalf("join: %d %v", st, grant)
	}
	if st, _ := getJSON(t, "GET", base+"/api/v1/petitions", grant["token"].(string), nil); st != 401 {
		t.Errorf("the room token opened the console API: %d", st)
	}

	// The resident waits; the officer sees them in the lobby.
	resident, err := meetpeer.Dial(wsURL, grant["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resident.Close()
	if _, err := resident.Wait(10*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeLobby && m.State == "waiting" }); err != nil {
		t.Fatalf("the resident does not wait in the lobby: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool { // the resident in the hearing's lobby
		_, got := getJSON(t, "GET", base+"/api/v1/hearings/"+id, tok, nil)
		lobby, _ := got["lobby"].([]any)
		return len(lobby) == 1 && lobby[0].(map[string]any)["identity"] == hearings.ResidentIdentity
	})
	host := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/host-token", nil, 201)
	officer, err := meetpeer.Dial(wsURL, host["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer officer.Close()
	if _, err := officer.Wait(10*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
		t.Fatal(err)
	}
	if err := officer.Publish(media); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Wait(10*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLobby && m.Lobby != nil && len(*m.Lobby) == 1
	}); err != nil {
		t.Fatalf("the officer's signaling does not show the lobby: %v", err)
	}

	admitted := time.Now()
	mustPost(t, base, tok, "/api/v1/hearings/"+id+"/admit", nil, 200)
	if _, err := resident.Wait(5*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
		t.Fatalf("not admitted: %v", err)
	}
	joinedAfter := time.Since(admitted)
	if err := resident.Publish(media); err != nil {
		t.Fatal(err)
	}
	officerID := host["identity"].(string)
	if err := resident.WaitReceived(officerID+"-camera", 50, 15*time.Second); err != nil {
		t.Fatal("the resident does not see the officer: ", err)
	}
	if err := officer.WaitReceived("resident-camera", 50, 15*time.Second); err != nil {
		t.Fatal("the officer does not see the resident: ", err)
	}
	twoWay := resident.FirstPacket(officerID + "-camera")
	if at := officer.FirstPacket("resident-camera"); at.After(twoWay) {
		twoWay = at
	}
	t.Logf("admission to two-way video: %v (joined after %v, the officer's video after %v, the resident's after %v)", twoWay.Sub(admitted),
		joinedAfter, resident.FirstPacket(officerID+"-camera").Sub(admitted), officer.FirstPacket("resident-camera").Sub(admitted))
	t.Logf("audio: the officer's after %v, the resident's after %v", resident.FirstPacket(officerID+"-microphone").Sub(admitted), officer.FirstPacket("resident-microphone").Sub(admitted))
	if _, got := getJSON(t, "GET", base+"/api/v1/hearings/"+id, tok, nil); got["state"] != "in_progress" || got["admitted_at"] == nil {
		t.Fatalf("after admission: %v", got)
	}
	heard(t, officer, "resident", 2*time.Second) // recorded both ways
	heard(t, resident, officerID, 2*time.Second)

	// The resident's phone dies: the officer is told, and the same link
	// brings them back into the hearing without waiting.
	resident.Drop()
	if _, err := officer.Wait(10*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == hearings.ResidentIdentity
	}); err != nil {
		t.Fatal("the officer was not told the resident left: ", err)
	}
	// The phone stays away this long (the fault's length, not a wait
	// for something): longer than the recorder's 1 s, so a pause.
	time.Sleep(1500 * time.Millisecond)
	st, grant = phone.post("/api/v1/hearing-link/join", map[string]any{"token": linkToken, "consent": true})
	if st != 200 {
		t.Fatalf("join again: %d %v", st, grant)
	}
	back, err := meetpeer.Dial(wsURL, grant["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := back.Wait(10*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
		t.Fatalf("back without the lobby: %v", err)
	}
	if err := back.Publish(media); err != nil {
		t.Fatal(err)
	}
	before := officer.Received("resident-camera")
	if err := officer.WaitReceived("resident-camera", before+50, 15*time.Second); err != nil {
		t.Fatal("the officer does not see the resident again: ", err)
	}
	heard(t, officer, "resident", 2*time.Second)

	mustPost(t, base, tok, "/api/v1/hearings/"+id+"/notes", map[string]any{"text": "居民陈述屋顶漏水已三个月。"}, 201)
	if st, b := getJSON(t, "POST", base+"/api/v1/hearings/"+id+"/end", tok, map[string]any{"outcome": "maybe"}); st != 422 {
		t.Fatalf("a bad outcome: %d %v", st, b)
	}
	ended := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/end", map[string]any{"outcome": "follow_up", "note": "安排维修"}, 200)
	if ended["state"] != "ended" || ended["outcome"] != "follow_up" {
		t.Fatalf("ended: %v", ended)
	}
	if _, err := back.Wait(5*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == hearings.ResidentIdentity && m.Reason == signal.LeftClosed
	}); err != nil {
		t.Errorf("the resident was not told the hearing ended: %v", err)
	}
	if st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": linkToken}); st != 401 || errorCode(body) != "link_revoked" && errorCode(body) != "hearing_over" {
		t.Errorf("the link after the end: %d %v", st, body)
	}

	// The recordings: one per source, finished, as listed.
	recs, _ := ended["recordings"].([]any)
	bySource := map[string]map[string]any{}
	for _, r := range recs {
		r := r.(map[string]any)
		bySource[r["identity"].(string)+"/"+r["source"].(string)] = r
	}
	if len(recs) != 4 {
		t.Fatalf("%d recordings: %v", len(recs), recs)
	}
	for key, r := range bySource {
		if r["state"] != "complete" {
			t.Fatalf("%s: %v", key, r)
		}
		file := filepath.Join(t.TempDir(), r["id"].(string)+".webm")
		download(t, base+"/api/v1/hearings/"+id+"/recordings/"+r["id"].(string), tok, file)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != r["sha256"] || int64(len(data)) != int64(r["bytes"].(float64)) {
			t.Fatalf("%s: the file's checksum or size is not the listed one", key)
		}
		p := ffprobe(t, file)
		dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
		listed := r["duration_ms"].(float64) / 1000
		if len(p.Streams) != 1 || math.Abs(dur-listed) > 0.5 || dur < 4 {
			t.Fatalf("%s: ffprobe %+v, duration %.2f s, listed %.2f s", key, p, dur, listed)
		}
		wantCodec, wantType := "vp8", "video"
		if r["source"] == "microphone" {
			wantCodec, wantType = "opus", "audio"
		}
		if s := p.Streams[0]; s.CodecName != wantCodec || s.CodecType != wantType || wantType == "video" && (s.Width != 640 || s.Height != 360) {
			t.Fatalf("%s: %+v", key, p.Streams)
		}
		pauses, _ := r["pauses"].([]any)
		if strings.HasPrefix(key, "resident/") {
			if len(pauses) == 0 {
				t.Fatalf("%s: the drop is not a pause: %v", key, r)
			}
			from, _ := time.Parse(time.RFC3339Nano, pauses[0].(map[string]any)["from"].(string))
			to, _ := time.Parse(time.RFC3339Nano, pauses[0].(map[string]any)["to"].(string))
			if gap := to.Sub(from); gap < time.Second {
				t.Fatalf("%s: a pause of %v", key, gap)
			}
		}
		t.Logf("%s: %s %.2f s, %d bytes, pauses %v", key, wantCodec, dur, len(data), pauses)
	}

	rec := mustGet(t, base, tok, "/api/v1/hearings/"+id+"/record")
	if rec["valid"] != true || rec["signature"] == "" {
		t.Fatalf("record: %v", rec)
	}
	var signed hearings.Record
	if err := json.Unmarshal(mustJSON(t, rec["record"]), &signed); err != nil {
		t.Fatal(err)
	}
	if signed.Outcome != "follow_up" || len(signed.Recordings) != 4 || len(signed.Notes) != 1 || signed.ConsentAt == nil {
		t.Fatalf("signed record: %+v", signed)
	}
	if _, p := getJSON(t, "GET", base+"/api/v1/petitions/"+pet["id"].(string), tok, nil); p["state"] != "heard" {
		t.Fatalf("the petition after the hearing: %v", p["state"])
	}
	audit := mustGet(t, base, tok, "/api/v1/audit?target="+id+"&limit=100")
	var actions []string
	for _, e := range audit["items"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string)+":"+e.(map[string]any)["result"].(string))
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"hearing.schedule:ok", "hearing.consent:ok", "hearing.link_refused:link_other_device", "hearing.admit:ok",
		"hearing.end:ok", "hearing.recording_play:ok", "room.token:ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit lacks %s: %s", want, got)
		}
	}
}

// The link's management: a re-issued link revokes the one before; the
// officer lets one other device in; a revoked link is refused.
func TestHearingLinkRevocationAndDevices(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	pet := mustPost(t, base, tok, "/api/v1/petitions", map[string]any{"org_id": "qj", "subject": "补偿", "description": "补偿款未到账。",
		"petitioner": map[string]any{"name": "王五", "phone": "13987654321", "id_number": "11010519491231002X"}}, 201)
	sched := mustPost(t, base, tok, "/api/v1/petitions/"+pet["id"].(string)+"/hearings", map[string]any{"starts_at": time.Now().UTC().Format(time.RFC3339)}, 201)
	id := sched["hearing"].(map[string]any)["id"].(string)
	first := strings.TrimPrefix(sched["link"].(map[string]any)["path"].(string), "/h/")

	phone, borrowed := newDevice(t, base), newDevice(t, base)
	if st, _ := phone.post("/api/v1/hearing-link/open", map[string]any{"token": first}); st != 200 {
		t.Fatal(st)
	}
	if st, body := borrowed.post("/api/v1/hearing-link/open", map[string]any{"token": first}); st != 403 || errorCode(body) != "link_other_device" {
		t.Fatalf("another device: %d %v", st, body)
	}
	h := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/link/allow-device", nil, 200)
	if link := h["link"].(map[string]any); link["allow_other_device"] != true || link["used"] != true {
		t.Fatalf("allowed: %v", h["link"])
	}
	if st, body := borrowed.post("/api/v1/hearing-link/open", map[string]any{"token": first}); st != 200 {
		t.Fatalf("the allowed device: %d %v", st, body)
	}
	// The allowance was for one device: the link is the borrowed
	// phone's now.
	if st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": first}); st != 403 || errorCode(body) != "link_other_device" {
		t.Fatalf("the first phone after the change: %d %v", st, body)
	}

	// A room token the first link was exchanged for (on the allowed
	// device), kept: it dies with that link.
	st, grant := borrowed.post("/api/v1/hearing-link/join", map[string]any{"token": first, "consent": true})
	if st != 200 {
		t.Fatalf("join: %d %v", st, grant)
	}
	wsURL := "ws://" + s.HTTPAddr() + "/rtc/signal"
	joins := func(token string) error {
		t.Helper()
		p, err := meetpeer.Dial(wsURL, token)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		m, err := p.Wait(10*time.Second, func(m signal.ServerMessage) bool {
			return m.Type == signal.TypeLobby || m.Type == signal.TypeJoined || m.Type == signal.TypeError
		})
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == signal.TypeError {
			return errors.New(m.Code + ": " + m.Message)
		}
		return nil
	}
	if err := joins(grant["token"].(string)); err != nil {
		t.Fatalf("the room token of the current link: %v", err)
	}

	second := strings.TrimPrefix(mustPost(t, base, tok, "/api/v1/hearings/"+id+"/link", nil, 201)["path"].(string), "/h/")
	if err := joins(grant["token"].(string)); err == nil || !strings.Contains(err.Error(), "bad_token") {
		t.Fatalf("the room token of a re-issued link: %v", err)
	}
	if st, body := borrowed.post("/api/v1/hearing-link/open", map[string]any{"token": first}); st != 401 || errorCode(body) != "link_revoked" || body["notice"] != nil {
		t.Fatalf("the old link: %d %v", st, body)
	}
	if st, _ := phone.post("/api/v1/hearing-link/open", map[string]any{"token": second}); st != 200 {
		t.Fatalf("the new link: %d", st)
	}
	if st, b := getJSON(t, "DELETE", base+"/api/v1/hearings/"+id+"/link", tok, nil); st != 200 {
		t.Fatalf("revoke: %d %v", st, b)
	}
	if st, body := phone.post("/api/v1/hearing-link/open", map[string]any{"token": second}); st != 401 || errorCode(body) != "link_revoked" {
		t.Fatalf("the revoked link: %d %v", st, body)
	}
	// Ended before anyone was admitted: cancelled, no record; no token
	// of the hearing's room works any more.
	host := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/host-token", nil, 201)
	ended := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/end", map[string]any{}, 200)
	if err := joins(host["token"].(string)); err == nil || !strings.Contains(err.Error(), "bad_token") {
		t.Fatalf("a host token after the end: %v", err)
	}
	if ended["state"] != "cancelled" {
		t.Fatalf("ended unheard: %v", ended)
	}
	if st, _ := getJSON(t, "GET", base+"/api/v1/hearings/"+id+"/record", tok, nil); st != 404 {
		t.Fatalf("the record of a cancelled hearing: %d", st)
	}
}

func mustGet(t *testing.T, base, tok, path string) map[string]any {
	t.Helper()
	st, b := getJSON(t, "GET", base+path, tok, nil)
	if st != 200 {
		t.Fatalf("GET %s: %d %v", path, st, b)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// download writes what GET url answers into file.
func download(t *testing.T, url, tok, file string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
}

// The server restarts in the middle of a hearing: the recordings made so
// far are finished by the stop (complete, with their checksums); the
// resident's link and the officer bring them back into the same hearing,
// the resident without waiting in the lobby again, and the recording goes
// on in new files until the end; the signed record holds them all.
func TestHearingSurvivesAServerRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	media, err := meetpeer.MakeMedia(ctx, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	pet := mustPost(t, base, tok, "/api/v1/petitions", map[string]any{"org_id": "qj", "subject": "征地补偿", "description": "补偿标准有异议。",
		"petitioner": map[string]any{"name": "王五", "phone": "13987654321", "id_number": "11010519491231002X"}}, 201)
	sched := mustPost(t, base, tok, "/api/v1/petitions/"+pet["id"].(string)+"/hearings", map[string]any{"starts_at": time.Now().UTC().Format(time.RFC3339)}, 201)
	id := sched["hearing"].(map[string]any)["id"].(string)
	linkToken := strings.TrimPrefix(sched["link"].(map[string]any)["path"].(string), "/h/")
	phone := newDevice(t, base)

	// join brings the officer and the resident into the hearing on the
	// server at base, both publishing; the resident waits for admission
	// when lobby says so.
	join := func(base, tok string, lobby bool) (officer, resident *meetpeer.Peer) {
		t.Helper()
		ws := "ws" + strings.TrimPrefix(base, "http") + "/rtc/signal"
		phone.base = base
		st, grant := phone.post("/api/v1/hearing-link/join", map[string]any{"token": linkToken, "consent": true})
		if st != 200 {
			t.Fatalf("join: %d %v", st, grant)
		}
		var err error
		if resident, err = meetpeer.Dial(ws, grant["token"].(string)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(resident.Close)
		host := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/host-token", nil, 201)
		if officer, err = meetpeer.Dial(ws, host["token"].(string)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(officer.Close)
		if _, err := officer.Wait(10*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
			t.Fatal(err)
		}
		if lobby {
			if _, err := resident.Wait(10*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeLobby && m.State == "waiting" }); err != nil {
				t.Fatal(err)
			}
			mustPost(t, base, tok, "/api/v1/hearings/"+id+"/admit", nil, 200)
		}
		if _, err := resident.Wait(10*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
			t.Fatalf("the resident is not in the hearing (lobby %v): %v", lobby, err)
		}
		if err := officer.Publish(media); err != nil {
			t.Fatal(err)
		}
		if err := resident.Publish(media); err != nil {
			t.Fatal(err)
		}
		if err := officer.WaitReceived("resident-camera", 50, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		return officer, resident
	}
	officer, resident := join(base, tok, true)
	heard(t, officer, "resident", 2*time.Second)
	stop(t, s) // the peers see their connections drop
	officer.Drop()
	resident.Drop()

	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok = login["token"].(string)
	h := mustGet(t, base, tok, "/api/v1/hearings/"+id)
	if h["state"] != "in_progress" {
		t.Fatalf("after the restart: %v", h["state"])
	}
	for _, r := range h["recordings"].([]any) {
		if r := r.(map[string]any); r["state"] != "complete" || r["sha256"] == "" {
			t.Fatalf("a recording the stop did not finish: %v", r)
		}
	}
	officer, _ = join(base, tok, false)
	heard(t, officer, "resident", 2*time.Second)
	ended := mustPost(t, base, tok, "/api/v1/hearings/"+id+"/end", map[string]any{"outcome": "referred"}, 200)
	recs := ended["recordings"].([]any)
	if len(recs) != 8 {
		t.Fatalf("%d recordings after the restart, want 4 before and 4 after: %v", len(recs), recs)
	}
	for _, r := range recs {
		if r := r.(map[string]any); r["state"] != "complete" {
			t.Fatalf("%v", r)
		}
	}
	if rec := mustGet(t, base, tok, "/api/v1/hearings/"+id+"/record"); rec["valid"] != true || len(rec["record"].(map[string]any)["recordings"].([]any)) != 8 {
		t.Fatalf("record: %v", rec)
	}
}

// heard waits until p has received d more of identity's audio: Opus
// packets of 20 ms, 50 a second, so d of media both sent and recorded.
func heard(t *testing.T, p *meetpeer.Peer, identity string, d time.Duration) {
	t.Helper()
	prefix := identity + "-microphone"
	if err := p.WaitReceived(prefix, p.Received(prefix)+int64(d/(20*time.Millisecond)), d+15*time.Second); err != nil {
		t.Fatalf("%v of %s's audio: %v", d, identity, err)
	}
}
