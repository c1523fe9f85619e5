package httpapi

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/console/petitions"
)

// upload posts content as the part field of a multipart body, named
// filename and claimed by the client to be image/jpeg (a claim the server
// ignores).
func (e *env) upload(path, token, field, filename string, content []byte) response {
	e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filename)+`"`)
	h.Set("Content-Type", "image/jpeg")
	part, err := w.CreatePart(h)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = part.Write(content)
	_ = w.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+path, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, raw: string(raw), body: decodeBody(raw)}
}

func decodeBody(raw []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{G: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testPDF is a PDF of size bytes carrying text.
func testPDF(size int, text string) []byte {
	b := []byte("%PDF-1.4\n% " + text + "\n")
	return append(b, bytes.Repeat([]byte{' '}, size-len(b))...)
}

// A hearing officer uploads material and downloads it with headers that
// keep the browser from running it; a commander of the same county sees
// only neutral names and downloads nothing; another county reaches
// nothing; bad files are refused by type and size with their reasons; the
// audit log has every step and neither the content nor the names.
func TestPetitionAttachments(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	for _, u := range []map[string]any{
		{"id": "qj-ho", "org_id": "qj", "role": "hearing_officer", "password": "qiaojia-hearing"},
		{"id": "qj-cmd", "org_id": "qj", "role": "commander", "password": "qiaojia-command"},
		{"id": "ys-ho", "org_id": "ys", "role": "hearing_officer", "password": "yongshan-hearing"},
	} {
		e.mustStatus(e.do("POST", "/api/v1/users", prov, u), 201)
	}
	officer := e.login("qj-ho", "qiaojia-hearing")
	commander := e.login("qj-cmd", "qiaojia-command")
	stranger := e.login("ys-ho", "yongshan-hearing")
	r := e.do("POST", "/api/v1/petitions", officer, map[string]any{"subject": "安置房漏水", "description": "屋顶漏水。",
		"petitioner": map[string]any{"name": "张三丰", "phone": "13812345678", "id_number": "11010519491231002X"}})
	e.mustStatus(r, 201)
	base := "/api/v1/petitions/" + r.body["id"].(string) + "/attachments"

	photo := testPNG(t)
	r = e.upload(base, officer, "file", `..\..\张三丰\房屋东侧.png`, photo)
	e.mustStatus(r, 201)
	if r.body["name"] != "房屋东侧.png" || r.body["content_type"] != "image/png" || r.body["size"] != float64(len(photo)) || r.body["masked"] != false {
		t.Fatalf("uploaded: %s", r.raw)
	}
	photoURL := r.header.Get("Location")
	if photoURL != base+"/"+r.body["id"].(string) {
		t.Fatalf("Location %q", photoURL)
	}
	e.mustStatus(e.upload(base, officer, "file", "IMG_0001.JPG", testJPEG(t)), 201)
	agreement := testPDF(2048, "CONTENT-MARKER-9321 补偿协议")
	r = e.upload(base, officer, "file", "补偿协议.doc", agreement)
	e.mustStatus(r, 201)
	if r.body["name"] != "补偿协议.pdf" || r.body["content_type"] != "application/pdf" {
		t.Fatalf("the PDF: %s", r.raw)
	}
	pdfURL := r.header.Get("Location")

	if r := e.upload(base, commander, "file", "x.png", photo); r.status != 403 || r.errCode() != "forbidden" {
		t.Fatalf("a commander uploaded: %d %s", r.status, r.raw)
	}
	if r := e.upload(base, stranger, "file", "x.png", photo); r.status != 403 || r.errCode() != "out_of_scope" {
		t.Fatalf("another county uploaded: %d %s", r.status, r.raw)
	}

	// Lists: names whole for the officer, neutral for the commander.
	r = e.do("GET", base, officer, nil)
	e.mustStatus(r, 200)
	if !strings.Contains(r.raw, `"name":"房屋东侧.png"`) || !strings.Contains(r.raw, `"item_count":3`) {
		t.Fatalf("the officer's list: %s", r.raw)
	}
	r = e.do("GET", base, commander, nil)
	e.mustStatus(r, 200)
	if strings.Contains(r.raw, "房屋") || !strings.Contains(r.raw, `"name":"附件 1","masked":true`) || !strings.Contains(r.raw, `"content_type":"application/pdf"`) {
		t.Fatalf("the commander's list: %s", r.raw)
	}

	// Downloads.
	r = e.do("GET", photoURL, officer, nil)
	e.mustStatus(r, 200)
	for k, want := range map[string]string{
		"Content-Type":            "image/png",
		"Content-Disposition":     `attachment; filename="attachment.png"; filename*=UTF-8''%E6%88%BF%E5%B1%8B%E4%B8%9C%E4%BE%A7.png`,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox",
		"Cache-Control":           "no-store",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r.raw != string(photo) {
		t.Fatalf("downloaded %d bytes, not the photo", len(r.raw))
	}
	if r := e.do("GET", pdfURL, officer, nil); r.raw != string(agreement) || r.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("the PDF came back as %q, %d bytes", r.header.Get("Content-Type"), len(r.raw))
	}
	if r := e.do("GET", photoURL, commander, nil); r.status != 403 {
		t.Fatalf("a commander downloaded: %d", r.status)
	}
	if r := e.do("GET", strings.Replace(photoURL, "/petitions/pet_", "/petitions/pet_0", 1), officer, nil); r.status != 404 {
		t.Fatalf("through no petition: %d", r.status)
	}
	if r := e.do("GET", base+"/att_nope", officer, nil); r.status != 404 || r.errCode() != "attachment_not_found" {
		t.Fatalf("no such attachment: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", photoURL, stranger, nil); r.status != 403 || r.errCode() != "out_of_scope" {
		t.Fatalf("another county downloaded: %d %s", r.status, r.raw)
	}

	// Bad files and bodies.
	for _, tc := range []struct {
		name, field, filename string
		content               []byte
		status                int
		code, says            string
	}{
		{"HTML named photo.jpg", "file", "photo.jpg", []byte("<html><script>alert(1)</script></html>"), 422, "unsupported_attachment_type", "the content is text/html"},
		{"a program", "file", "setup.pdf", append([]byte("MZ\x90\x00"), make([]byte, 100)...), 422, "unsupported_attachment_type", "application/octet-stream"},
		{"10 MiB + 1", "file", "big.pdf", testPDF(petitions.MaxAttachmentBytes+1, "x"), 422, "attachment_too_large", "10485760 bytes"},
		{"far over 10 MiB", "file", "bigger.pdf", testPDF(attachmentBodyCap+1, "x"), 422, "attachment_too_large", "10485760 bytes"},
		{"another field", "photo", "a.png", photo, 400, "unknown_field", "photo"},
		{"an empty file", "file", "a.png", nil, 422, "invalid_field", "empty"},
	} {
		r := e.upload(base, officer, tc.field, tc.filename, tc.content)
		if r.status != tc.status || r.errCode() != tc.code || !strings.Contains(r.raw, tc.says) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	// A body over the cap before the file begins (lines of preamble the
	// multipart reader skips) is cut off.
	req, _ := http.NewRequest("POST", e.srv.URL+base, io.MultiReader(strings.NewReader(strings.Repeat("preamble\r\n", attachmentBodyCap/10+1)+"--b\r\n"),
		strings.NewReader("Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"+string(photo)+"\r\n--b--\r\n")))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.Header.Set("Authorization", "Bearer "+officer)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("a body over the cap: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if r := e.do("POST", base, officer, map[string]any{"file": "aGVsbG8="}); r.status != 415 {
		t.Errorf("JSON: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", base, officer, nil); !strings.Contains(r.raw, `"item_count":3`) {
		t.Fatalf("a refused file was kept: %s", r.raw)
	}

	// Deleting.
	if r := e.do("DELETE", pdfURL, commander, nil); r.status != 403 {
		t.Fatalf("a commander deleted: %d", r.status)
	}
	e.mustStatus(e.do("DELETE", pdfURL, officer, nil), 204)
	if r := e.do("DELETE", pdfURL, officer, nil); r.status != 404 {
		t.Fatalf("deleted twice: %d", r.status)
	}

	audit := e.do("GET", "/api/v1/audit?limit=200", prov, nil)
	e.mustStatus(audit, 200)
	for _, secret := range []string{"CONTENT-MARKER-9321", "房屋", "补偿协议", "张三丰", "IMG_0001"} {
		if strings.Contains(audit.raw, secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	for _, want := range []string{`"action":"petition.attachment_add"`, `"action":"petition.attachment_read"`, `"action":"petition.attachment_delete"`,
		`"action":"petition.read_personal_data"`, `"name":"附件 3"`, `"content_type":"application/pdf"`} {
		if !strings.Contains(audit.raw, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
	if n := strings.Count(audit.raw, `"action":"petition.attachment_read"`); n != 2 {
		t.Errorf("%d downloads audited, want 2", n)
	}
}

func TestContentDisposition(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"IMG_0001.JPG", `attachment; filename="IMG_0001.JPG"; filename*=UTF-8''IMG_0001.JPG`},
		{"a b(1)'=.pdf", `attachment; filename="a b(1)'=.pdf"; filename*=UTF-8''a%20b%281%29%27%3D.pdf`},
		{"协议.pdf", `attachment; filename="attachment.pdf"; filename*=UTF-8''%E5%8D%8F%E8%AE%AE.pdf`},
		{"附件", `attachment; filename="attachment"; filename*=UTF-8''%E9%99%84%E4%BB%B6`},
	} {
		if got := contentDisposition(tc.name); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.name, got, tc.want)
		}
	}
}
