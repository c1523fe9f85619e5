package petitions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// pngFile is a real 4x3 PNG.
func pngFile(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegFile is a real 8x8 JPEG.
func jpegFile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pdfFile is a PDF of exactly size bytes: the header, then text to fill.
func pdfFile(size int, text string) []byte {
	b := []byte("%PDF-1.4\n% " + text + "\n")
	return append(b, bytes.Repeat([]byte{' '}, size-len(b))...)
}

func fieldOf(err error) (code, field string) {
	var ce *errclass.Error
	if errors.As(err, &ce) {
		return ce.Code, ce.Field
	}
	return "", ""
}

// The limits: exactly 10 MiB is kept and one byte more refused by field;
// a petition takes 50 MiB in all and 20 files at most; an empty file is
// refused.
func TestAttachmentLimits(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	p, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "big.pdf", bytes.NewReader(pdfFile(MaxAttachmentBytes+1, "over")))
	if code, field := fieldOf(err); code != "attachment_too_large" || field != "file" || !strings.Contains(err.Error(), "10485760 bytes") {
		t.Fatalf("10 MiB + 1: %v", err)
	}
	for i := range 5 {
		a, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "协议.pdf", bytes.NewReader(pdfFile(MaxAttachmentBytes, "exactly")))
		if err != nil || a.Size != MaxAttachmentBytes || a.ContentType != "application/pdf" {
			t.Fatalf("10 MiB #%d: %+v %v", i+1, a, err)
		}
	}
	if _, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "one-more.png", bytes.NewReader(pngFile(t))); !errors.Is(err, ErrAttachmentsFull) {
		t.Fatalf("over 50 MiB in all: %v", err)
	}
	if _, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "empty.png", bytes.NewReader(nil)); errclass.KindOf(err) != errclass.Invalid {
		t.Fatalf("an empty file: %v", err)
	}

	q, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxAttachments {
		if _, err := e.store.AddAttachment(e.ctx, qj, q.ID, "officer-li", "照片.png", bytes.NewReader(pngFile(t))); err != nil {
			t.Fatalf("file %d: %v", i+1, err)
		}
	}
	if _, err := e.store.AddAttachment(e.ctx, qj, q.ID, "officer-li", "照片.png", bytes.NewReader(pngFile(t))); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("file 21: %v", err)
	}
	if list, _ := e.store.Attachments(e.ctx, qj, q.ID, true); len(list) != MaxAttachments {
		t.Fatalf("%d kept", len(list))
	}
}

// The type is the content's: an HTML page named photo.jpg, a Windows
// program, a PNG signature before garbage are refused with the type found;
// real images and PDFs are kept under a name that agrees with their type.
func TestAttachmentTypesByContent(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	p, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 200)...)
	for _, tc := range []struct {
		name    string
		content []byte
		found   string
	}{
		{"photo.jpg", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), "text/html"},
		{"photo.jpg", exe, "application/octet-stream"},
		{"scan.png", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0x42}, 64)...), "image/png with a damaged header"},
		{"house.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "text/plain"},
		{"a.zip", []byte("PK\x03\x04" + strings.Repeat("\x00", 40)), "application/zip"},
	} {
		_, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", tc.name, bytes.NewReader(tc.content))
		if code, field := fieldOf(err); code != "unsupported_attachment_type" || field != "file" || !strings.Contains(err.Error(), "the content is "+tc.found) {
			t.Errorf("%s (%s): %v", tc.name, tc.found, err)
		}
	}
	webp := []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
	for _, tc := range []struct {
		name    string
		content []byte
		ct      string
		want    string
	}{
		{"../../etc/passwd", pngFile(t), "image/png", "passwd.png"},
		{"房屋.jpg", pngFile(t), "image/png", "房屋.png"},
		{"IMG_2041.JPG", jpegFile(t), "image/jpeg", "IMG_2041.JPG"},
		{"聊天图片", webp, "image/webp", "聊天图片.webp"},
		{"补偿协议.pdf", pdfFile(100, "agreement"), "application/pdf", "补偿协议.pdf"},
	} {
		a, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", tc.name, bytes.NewReader(tc.content))
		if err != nil || a.ContentType != tc.ct || a.Name != tc.want {
			t.Errorf("%s: %+v %v", tc.name, a, err)
		}
	}
	if list, _ := e.store.Attachments(e.ctx, qj, p.ID, true); len(list) != 5 {
		t.Fatalf("kept %d, want the 5 good ones", len(list))
	}
}

// Attachments are personal data: the name and content are only
// ciphertext in the database's files; a blob moved to another petition or
// attachment does not open; listing masks names unless asked whole; other
// counties reach none of it; a closed petition's material is final.
func TestAttachmentsSealedAndScoped(t *testing.T) {
	e := newEnv(t)
	qj, ys := e.scope(t, "qj"), e.scope(t, "ys")
	p, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	content := pdfFile(4096, "COMPENSATION-AGREEMENT-4711 张三丰补偿协议")
	a, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "张三丰身份证.pdf", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(content); a.SHA256 != hex.EncodeToString(sum[:]) || a.CreatedBy != "officer-li" || a.OrgID != "qj" {
		t.Fatalf("added: %+v", a)
	}
	got, data, err := e.store.Attachment(e.ctx, e.scope(t, "zt"), p.ID, a.ID)
	if err != nil || !bytes.Equal(data, content) || got.Name != "张三丰身份证.pdf" || got.Masked {
		t.Fatalf("read back: %+v %v", got, err)
	}
	b, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "房屋.png", bytes.NewReader(pngFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.store.Attachments(e.ctx, qj, p.ID, false)
	if err != nil || len(list) != 2 || list[0].Name != "附件 1" || list[1].Name != "附件 2" || !list[0].Masked || list[1].ContentType != "image/png" {
		t.Fatalf("masked list: %+v %v", list, err)
	}
	for _, name := range []string{sqldb.FileName, sqldb.FileName + "-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.dir, name))
		for _, secret := range []string{"COMPENSATION-AGREEMENT-4711", "张三丰身份证", "张三丰补偿协议", "房屋.png"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds %q in the clear", name, secret)
			}
		}
	}

	// Out of scope, or not there.
	if _, err := e.store.AddAttachment(e.ctx, ys, p.ID, "officer-wang", "x.png", bytes.NewReader(pngFile(t))); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Errorf("another county added: %v", err)
	}
	if _, err := e.store.Attachments(e.ctx, ys, p.ID, false); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Errorf("another county listed: %v", err)
	}
	if _, _, err := e.store.Attachment(e.ctx, ys, p.ID, a.ID); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Errorf("another county read: %v", err)
	}
	if _, err := e.store.DeleteAttachment(e.ctx, ys, p.ID, a.ID); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Errorf("another county deleted: %v", err)
	}
	if _, _, err := e.store.Attachment(e.ctx, qj, other.ID, a.ID); !errors.Is(err, ErrAttachmentNotFound) {
		t.Errorf("read through another petition: %v", err)
	}
	if _, err := e.store.Attachments(e.ctx, qj, "pet_nope", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such petition: %v", err)
	}

	// A blob moved: the row to another petition, the content to another
	// attachment of the same petition.
	db := e.store.db
	if _, err := db.Exec(`UPDATE petition_attachments SET petition_id = ? WHERE id = ?`, other.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Attachment(e.ctx, qj, other.ID, a.ID); !errors.Is(err, ErrUnsealed) {
		t.Errorf("a row moved to another petition opened: %v", err)
	}
	if _, err := db.Exec(`UPDATE petition_attachments SET petition_id = ? WHERE id = ?`, p.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE petition_attachments SET content_enc = (SELECT content_enc FROM petition_attachments WHERE id = ?) WHERE id = ?`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Attachment(e.ctx, qj, p.ID, b.ID); !errors.Is(err, ErrUnsealed) {
		t.Errorf("content moved to another attachment opened: %v", err)
	}
	if _, err := db.Exec(`UPDATE petition_attachments SET content_enc = name_enc WHERE id = ?`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Attachment(e.ctx, qj, p.ID, a.ID); !errors.Is(err, ErrUnsealed) {
		t.Errorf("the name as the content opened: %v", err)
	}

	// Deleting, and a closed petition.
	if d, err := e.store.DeleteAttachment(e.ctx, qj, p.ID, b.ID); err != nil || d.ID != b.ID || !d.Masked {
		t.Fatalf("delete: %+v %v", d, err)
	}
	if _, err := e.store.DeleteAttachment(e.ctx, qj, p.ID, b.ID); !errors.Is(err, ErrAttachmentNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}
	for _, step := range []string{StateWithdrawn, StateClosed} {
		if _, err := e.store.Step(e.ctx, qj, "officer-li", p.ID, step, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.AddAttachment(e.ctx, qj, p.ID, "officer-li", "late.png", bytes.NewReader(pngFile(t))); !errors.Is(err, ErrPetitionClosed) {
		t.Errorf("added to a closed petition: %v", err)
	}
	if _, err := e.store.DeleteAttachment(e.ctx, qj, p.ID, a.ID); !errors.Is(err, ErrPetitionClosed) {
		t.Errorf("deleted from a closed petition: %v", err)
	}
}
