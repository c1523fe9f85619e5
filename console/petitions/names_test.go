package petitions

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("安置房照片", 20) // 300 bytes
	for _, tc := range []struct {
		name, ct, want string
	}{
		{"张三丰 房屋东侧（漏水）.jpg", "image/jpeg", "张三丰 房屋东侧（漏水）.jpg"},
		{"补偿协议.PDF", "application/pdf", "补偿协议.PDF"},
		{"IMG_0001.jpeg", "image/jpeg", "IMG_0001.jpeg"},
		{"../../etc/passwd", "image/png", "passwd.png"},
		{`C:\Users\li\Desktop\协议.pdf`, "application/pdf", "协议.pdf"},
		{"photo.html", "image/png", "photo.png"},                 // another type's extension: replaced
		{"photo.jpg", "application/pdf", "photo.pdf"},            // likewise
		{"第3.5期安置", "image/webp", "第3.5期安置.webp"},                // not an extension: added
		{"v1.2", "application/pdf", "v1.2.pdf"},                  // likewise
		{"invoice\u202Egpj.exe", "image/jpeg", "invoicegpj.jpg"}, // the override that reads exe.jpg
		{"a\u2066b\u2069c\u200Bd.png", "image/png", "abcd.png"},
		{"a\x00b\nc\x7f.png", "image/png", "abc.png"},
		{"a\xffb.png", "image/png", "ab.png"}, // invalid UTF-8
		{`a<b>c:d"e|f?g*h.png`, "image/png", "a_b_c_d_e_f_g_h.png"},
		{"  .hidden.png. ", "image/png", "hidden.png"},
		{"CON.png", "image/png", "_CON.png"},
		{"lpt1.tar.pdf", "application/pdf", "_lpt1.tar.pdf"},
		{"CONSOLE.png", "image/png", "CONSOLE.png"},
		{"", "image/jpeg", "附件.jpg"},
		{"../", "image/png", "附件.png"},
		{"...", "application/pdf", "附件.pdf"},
		{"\u202E", "image/webp", "附件.webp"},
		{".jpg", "image/jpeg", "附件.jpg"},
		{long + ".jpg", "image/jpeg", long[:114] + ".jpg"}, // 38 characters of 3 bytes, cut between them
		{"x" + long + ".jpg", "image/jpeg", "x" + long[:114] + ".jpg"},
		{"名字.txt", "", "名字.txt"}, // no type: no extension enforced
	} {
		got := SanitizeName(tc.name, tc.ct)
		if got != tc.want {
			t.Errorf("SanitizeName(%q, %s) = %q, want %q", tc.name, tc.ct, got, tc.want)
		}
		if again := SanitizeName(got, tc.ct); again != got {
			t.Errorf("not idempotent: %q -> %q", got, again)
		}
	}
}

// FuzzSanitizeName: whatever the name, the result is a base name of valid
// UTF-8 with no control or format character, at most MaxNameBytes, with
// the type's extension, and sanitising it again changes nothing.
func FuzzSanitizeName(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "../../etc/passwd", `..\..\windows\system32\cmd.exe`, "张三丰身份证.jpg",
		"invoice\u202Egpj.exe", "a\x00b", "\xff\xfe", "CON", "com1.txt.png", " . . ", "x.JPG", "第3.5期",
		strings.Repeat("房", 60) + ".pdf", strings.Repeat("a", 200), "a\u2028b\u2029c", "\ufeffbom.png", "名字\u3000.webp",
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(3))
	}
	types := []string{"image/jpeg", "image/png", "image/webp", "application/pdf", ""}
	f.Fuzz(func(t *testing.T, name string, which uint8) {
		ct := types[int(which)%len(types)]
		got := SanitizeName(name, ct)
		switch {
		case got == "":
			t.Fatalf("%q: empty", name)
		case !utf8.ValidString(got):
			t.Fatalf("%q: invalid UTF-8 %q", name, got)
		case len(got) > MaxNameBytes:
			t.Fatalf("%q: %d bytes", name, len(got))
		case strings.ContainsAny(got, `/\<>:"|?*`):
			t.Fatalf("%q: a separator or reserved character in %q", name, got)
		case strings.IndexFunc(got, func(r rune) bool {
			return unicode.In(r, unicode.Cc, unicode.Cf) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
		}) >= 0:
			t.Fatalf("%q: a control character in %q", name, got)
		case got[0] == '.' || got[len(got)-1] == ' ':
			t.Fatalf("%q: %q starts with a dot or ends with a space", name, got)
		}
		if exts := typeExts[ct]; len(exts) > 0 {
			i := strings.LastIndexByte(got, '.')
			if i < 0 || !containsFold(exts, got[i+1:]) {
				t.Fatalf("%q: %q lacks a %s extension", name, got, ct)
			}
		}
		if again := SanitizeName(got, ct); again != got {
			t.Fatalf("%q: not idempotent: %q -> %q", name, got, again)
		}
	})
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
