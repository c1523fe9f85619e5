package meet

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The page's files are served with their types, the policies and no
// caching; a file the page lacks is a 404, and the directory is the page.
func TestHandlerServesThePage(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/meet", Handler()))
	defer srv.Close()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/meet/", "text/html", `<script type="module" src="meet.js"></script>`},
		{"/meet/meet.js", "text/javascript", "from './signal.js'"},
		{"/meet/signal.js", "text/javascript", "export class MeetingClient"},
		{"/meet/i18n.js", "text/javascript", "export function t("},
		{"/meet/meet.css", "text/css", ".tile"},
		{"/meet/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d %q %.80q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "media-src 'self' blob:", "frame-ancestors 'self'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", tc.path, csp, want)
			}
		}
		if !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
		// Nothing may run or load from elsewhere: no 'unsafe-*', no scheme
		// or host in script or style sources.
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
			t.Errorf("%s: Content-Security-Policy too wide: %q", tc.path, csp)
		}
		if pp := resp.Header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=(self)") || !strings.Contains(pp, "microphone=(self)") {
			t.Errorf("%s: Permissions-Policy %q", tc.path, pp)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q", tc.path, cc)
		}
		if v := resp.Header.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", tc.path, v)
		}
	}
	resp, err := http.Get(srv.URL + "/meet/nothing.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a file the page lacks: %d", resp.StatusCode)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(files, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The page loads nothing from elsewhere: no URL with a scheme or a host in
// any file (the SVG namespace is a name, not a load), no inline script or
// style, which the policy would refuse anyway.
func TestPageIsSelfContained(t *testing.T) {
	scheme := regexp.MustCompile(`\b(?i:https?|wss?)://|(?:src|href)="//|\burl\(`)
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		body := strings.ReplaceAll(readFile(t, e.Name()), "http://www.w3.org/2000/svg", "")
		// The signaling URL is built from the page's own location.
		body = strings.ReplaceAll(body, "'wss' : 'ws'}://${loc.host}", "")
		if m := scheme.FindString(body); m != "" {
			t.Errorf("%s refers to %q", e.Name(), m)
		}
	}
	page := readFile(t, "index.html")
	for _, bad := range []string{"<script>", "<style", " style=", "onclick=", "onload=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html has %q", bad)
		}
	}
	for _, f := range []string{"meet.css", "meet.js", "favicon.svg"} {
		if !strings.Contains(page, `"`+f+`"`) {
			t.Errorf("index.html does not load %s", f)
		}
	}
	js := readFile(t, "meet.js")
	for _, f := range []string{"./signal.js", "./i18n.js"} {
		if !strings.Contains(js, "from '"+f+"'") {
			t.Errorf("meet.js does not import %s", f)
		}
	}
}

var (
	// An entry of i18n.js: 'key': 'value', one a line.
	i18nEntry = regexp.MustCompile(`(?m)^\s*'([a-z0-9_.]+)':\s*'((?:[^'\\\n]|\\.)*)',\s*$`)
	// A placeholder in a string.
	placeholder = regexp.MustCompile(`\{(\w+)\}`)
	// A key the page looks up: t('key' ...) in meet.js.
	tCall = regexp.MustCompile(`\bt\(\s*'([^']+)'`)
	// A key named by the static page.
	htmlKey = regexp.MustCompile(`data-i18n(?:-[a-z]+)?="([^"]+)"`)
	// Any string literal of meet.js that looks like a key (local.note = 'media.denied').
	keyLiteral = regexp.MustCompile(`'([a-z]+(?:\.[a-z0-9_]+)+)'`)
)

// table reads one language's table of i18n.js: const zh = { ... };
func table(t *testing.T, src, name string) map[string]string {
	t.Helper()
	start := strings.Index(src, "\nconst "+name+" = {\n")
	if start < 0 {
		t.Fatalf("i18n.js has no table %s", name)
	}
	end := strings.Index(src[start:], "\n};\n")
	if end < 0 {
		t.Fatalf("i18n.js: table %s does not end", name)
	}
	block := src[start : start+end]
	out := map[string]string{}
	lines := 0
	for _, line := range strings.Split(block, "\n")[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		lines++
		m := i18nEntry.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("i18n.js %s: a line that is not 'key': 'value',: %q", name, line)
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("i18n.js %s: %s twice", name, m[1])
		}
		out[m[1]] = m[2]
	}
	if len(out) == 0 || len(out) != lines {
		t.Fatalf("i18n.js %s: %d strings of %d lines", name, len(out), lines)
	}
	return out
}

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// Every string the page shows is in both languages: each key meet.js and
// index.html use, each error code and reason of docs/signaling.md the page
// words, each state; Chinese and English have the same keys and the same
// placeholders, and none is empty.
func TestEveryStringInBothLanguages(t *testing.T) {
	src := readFile(t, "i18n.js")
	zh := table(t, src, "zh")
	en := table(t, src, "en")

	for k, v := range zh {
		w, ok := en[k]
		switch {
		case !ok:
			t.Errorf("%s: in Chinese, not in English", k)
		case strings.TrimSpace(v) == "" || strings.TrimSpace(w) == "":
			t.Errorf("%s: empty (%q, %q)", k, v, w)
		case !slices.Equal(placeholders(v), placeholders(w)):
			t.Errorf("%s: placeholders %v in Chinese, %v in English", k, placeholders(v), placeholders(w))
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("%s: in English, not in Chinese", k)
		}
	}

	namespaces := map[string]bool{}
	for k := range zh {
		namespaces[k[:strings.IndexByte(k, '.')]] = true
	}
	used := map[string]string{}
	js := readFile(t, "meet.js")
	for _, m := range tCall.FindAllStringSubmatch(js, -1) {
		used[m[1]] = "meet.js t()"
	}
	for _, m := range keyLiteral.FindAllStringSubmatch(js, -1) {
		if namespaces[m[1][:strings.IndexByte(m[1], '.')]] {
			used[m[1]] = "meet.js"
		}
	}
	for _, m := range htmlKey.FindAllStringSubmatch(readFile(t, "index.html"), -1) {
		used[m[1]] = "index.html"
	}
	if len(used) < 40 {
		t.Fatalf("found only %d keys in use: %v", len(used), used)
	}
	// Keys the page makes of a prefix and a value: every value it can be.
	for _, s := range []string{"prejoin", "joining", "joined", "reconnecting", "failed", "left", "media"} {
		used["state."+s] = "body state"
	}
	for _, r := range []string{"left", "removed", "replaced"} {
		used["ended."+r] = "why this participant left"
	}
	for _, r := range []string{"host", "participant", "viewer"} {
		used["role."+r] = "room roles"
	}
	doc := signalingDoc(t)
	for _, code := range doc.errors {
		used["err."+code] = "docs/signaling.md error code"
	}
	for _, reason := range doc.reasons {
		used["left."+reason] = "docs/signaling.md participant_left reason"
	}
	for k, where := range used {
		if _, ok := zh[k]; !ok {
			t.Errorf("%s (%s): no Chinese string", k, where)
		}
		if _, ok := en[k]; !ok {
			t.Errorf("%s (%s): no English string", k, where)
		}
	}
}

type docCodes struct{ errors, reasons []string }

// signalingDoc reads the error codes and the reasons a participant leaves
// from docs/signaling.md.
func signalingDoc(t *testing.T) docCodes {
	t.Helper()
	b, err := os.ReadFile("../../docs/signaling.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var out docCodes
	i := strings.Index(doc, "## Errors and closing")
	if i < 0 {
		t.Fatal("docs/signaling.md has no error table")
	}
	row := regexp.MustCompile("(?m)^\\| ((?:`[a-z_]+`(?:, )?)+) \\|")
	code := regexp.MustCompile("`([a-z_]+)`")
	for _, m := range row.FindAllStringSubmatch(doc[i:], -1) {
		for _, c := range code.FindAllStringSubmatch(m[1], -1) {
			out.errors = append(out.errors, c[1])
		}
	}
	left := regexp.MustCompile("(?m)^\\| `participant_left` \\|.*$").FindString(doc)
	for _, m := range regexp.MustCompile("`([a-z_]+)` \\(").FindAllStringSubmatch(left, -1) {
		out.reasons = append(out.reasons, m[1])
	}
	if len(out.errors) < 10 || len(out.reasons) < 5 {
		t.Fatalf("docs/signaling.md: error codes %v, reasons %v", out.errors, out.reasons)
	}
	return out
}

// The resident's hearing page is served for any token with the policies,
// never cached and sending no Referer (the link's token is in the path);
// its files come from /meet/.
func TestHearingHandlerServesThePage(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/h/", HearingHandler())
	mux.Handle("/meet/", http.StripPrefix("/meet", Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/h/eyJhbGciOiJFZERTQSJ9.e30.sig", "/h/forged", "/h/%E4%BD%A0"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
			!strings.Contains(string(body), `<script type="module" src="/meet/hearing.js"></script>`) {
			t.Errorf("%s: %d %q %.80q", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		for header, want := range map[string]string{
			"Content-Security-Policy": HearingContentSecurityPolicy,
			"Permissions-Policy":      PermissionsPolicy,
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-store",
			"X-Content-Type-Options":  "nosniff",
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("%s: %s %q, want %q", path, header, got, want)
			}
		}
		// Nothing of any hearing is in the page itself.
		if strings.Contains(string(body), "hearing_id") {
			t.Errorf("%s: the page carries data", path)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/h/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	for _, f := range []string{"/meet/hearing.js", "/meet/hearing_i18n.js", "/meet/hearing.css", "/meet/signal.js", "/meet/favicon.svg"} {
		resp, err := http.Get(srv.URL + f)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", f, resp.StatusCode)
		}
	}
}

// The hearing page loads only its own files, by absolute paths (it is
// served at /h/{token}), runs no inline script or style, and asks for a
// phone's viewport.
func TestHearingPageIsSelfContained(t *testing.T) {
	page := readFile(t, "hearing.html")
	for _, bad := range []string{"<script>", "<style", " style=", "onclick=", "onload=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("hearing.html has %q", bad)
		}
	}
	for _, want := range []string{`src="/meet/hearing.js"`, `href="/meet/hearing.css"`, `href="/meet/favicon.svg"`,
		`name="viewport" content="width=device-width`, `name="referrer" content="no-referrer"`, `lang="zh-CN"`} {
		if !strings.Contains(page, want) {
			t.Errorf("hearing.html lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`(?:src|href)="(?:[^/"]|/[^m])`).FindString(page); m != "" {
		t.Errorf("hearing.html loads a relative or foreign path: %s", m)
	}
	js := readFile(t, "hearing.js")
	for _, f := range []string{"./signal.js", "./hearing_i18n.js"} {
		if !strings.Contains(js, "from '"+f+"'") {
			t.Errorf("hearing.js does not import %s", f)
		}
	}
	css := readFile(t, "hearing.css")
	if strings.Contains(css, "@import") || strings.Contains(css, "@font-face") {
		t.Errorf("hearing.css loads fonts or files")
	}
}

// hearingTable reads hearing_i18n.js's table.
func hearingTable(t *testing.T) map[string]string {
	t.Helper()
	src := readFile(t, "hearing_i18n.js")
	start := strings.Index(src, "\nconst zh = {\n")
	end := strings.Index(src, "\n};\n")
	if start < 0 || end < start {
		t.Fatal("hearing_i18n.js has no table: const zh = { ... };")
	}
	out := map[string]string{}
	for _, line := range strings.Split(src[start:end], "\n")[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := i18nEntry.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("hearing_i18n.js: a line that is not 'key': 'value',: %q", line)
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("hearing_i18n.js: %s twice", m[1])
		}
		if strings.TrimSpace(m[2]) == "" {
			t.Errorf("hearing_i18n.js: %s is empty", m[1])
		}
		out[m[1]] = m[2]
	}
	if len(out) < 50 {
		t.Fatalf("hearing_i18n.js: only %d strings", len(out))
	}
	return out
}

// Every string of the hearing page is in its one table, and every string
// of the table is used: the keys hearing.js and hearing.html name, the
// refusals of the link (console/hearings' codes, each with a heading and
// what to do), and the ways the call ends.
func TestHearingStrings(t *testing.T) {
	zh := hearingTable(t)
	used := map[string]string{}
	js := readFile(t, "hearing.js")
	for _, m := range tCall.FindAllStringSubmatch(js, -1) {
		used[m[1]] = "hearing.js t()"
	}
	// Keys in tables of hearing.js (notes = {ok: 'check.ok', ...}).
	for _, m := range keyLiteral.FindAllStringSubmatch(js, -1) {
		if _, ok := zh[m[1]]; ok {
			used[m[1]] = "hearing.js"
		}
	}
	for _, m := range htmlKey.FindAllStringSubmatch(readFile(t, "hearing.html"), -1) {
		used[m[1]] = "hearing.html"
	}
	// The link's refusals, as console/hearings answers them.
	src, err := os.ReadFile("../hearings/hearings.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := regexp.MustCompile(`ErrLink\w+\s*=\s*errclass\.New\(errclass\.\w+, "([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(codes) < 6 {
		t.Fatalf("console/hearings: only %d link refusals found", len(codes))
	}
	i18n := readFile(t, "hearing_i18n.js")
	for _, c := range codes {
		used["refused."+c[1]+".heading"] = "console/hearings " + c[1]
		used["refused."+c[1]+".text"] = "console/hearings " + c[1]
		if !strings.Contains(i18n, "'"+c[1]+"'") {
			t.Errorf("REFUSALS lacks %s", c[1])
		}
	}
	for _, k := range []string{"network", "unknown"} {
		used["refused."+k+".heading"], used["refused."+k+".text"] = "refusal", "refusal"
	}
	for _, r := range []string{"rejected", "removed", "replaced"} {
		used["out."+r+".heading"], used["out."+r+".text"] = "left code", "left code"
	}
	for _, c := range []string{"room_full", "bad_token"} {
		used["out."+c+".text"] = "failed code"
	}
	for k, where := range used {
		if _, ok := zh[k]; !ok {
			t.Errorf("%s (%s): not in hearing_i18n.js", k, where)
		}
	}
	for k := range zh {
		if _, ok := used[k]; !ok {
			t.Errorf("%s: in hearing_i18n.js, used nowhere", k)
		}
	}
	if v := zh["refused.link_not_yet_valid.text"]; !slices.Equal(placeholders(v), []string{"opens", "start"}) {
		t.Errorf("refused.link_not_yet_valid.text: %q", v)
	}
}
