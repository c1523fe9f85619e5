package petitions

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes caps an attachment's name: enough for a descriptive
// Chinese name (40 characters), short enough for every file system and
// for a Content-Disposition header.
const MaxNameBytes = 120

// fallbackStem names an attachment whose name has nothing left.
const fallbackStem = "附件"

// SanitizeName makes an uploaded file's name safe to store, list and send
// back in a Content-Disposition header, for content of the sniffed
// contentType:
//
//   - the base name only: what follows the last / or \ (a browser on
//     Windows may send C:\fakepath\..., a script ../../etc/passwd);
//   - control, format (the bidi overrides U+202A-U+202E and isolates
//     U+2066-U+2069 that make "exe.jpg" read backwards, zero-width
//     characters), line and paragraph separators, private-use characters
//     and invalid UTF-8 removed;
//   - the characters Windows reserves (<>:"|?*) replaced by _, and a
//     Windows device name (CON, NUL, COM1...) prefixed with _, so the file
//     saves on the officers' Windows desktops as it is named;
//   - spaces and dots trimmed at both ends (no hidden dot files);
//   - the extension agreeing with contentType: kept when it is one of the
//     type's, replaced when it is another (photo.html -> photo.png),
//     added when there is none;
//   - at most MaxNameBytes bytes, cut between characters;
//   - 附件 plus the extension when nothing is left.
//
// Everything else, Chinese included, is kept as it is. SanitizeName is
// idempotent: a sanitised name comes back unchanged.
func SanitizeName(name, contentType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1: // an invalid byte
		case dropped(r):
		case strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	// Leading dots go with the stem below, so that ".jpg" is an
	// extension without a name rather than a name "jpg".
	name = strings.TrimRightFunc(strings.TrimLeftFunc(b.String(), unicode.IsSpace), spaceOrDot)

	stem, ext := name, ""
	if exts := typeExts[contentType]; len(exts) > 0 {
		ext = exts[0]
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			switch given := name[i+1:]; {
			case slices.Contains(exts, strings.ToLower(given)):
				stem, ext = name[:i], given // the officer's spelling, JPG or jpeg
			case looksLikeExt(given):
				stem = name[:i] // another type's extension: replaced
			}
		}
	}
	stem = strings.TrimFunc(stem, spaceOrDot)
	if first, _, _ := strings.Cut(stem, "."); isDeviceName(strings.TrimRight(first, " ")) {
		stem = "_" + stem
	}
	max := MaxNameBytes
	if ext != "" {
		max -= len(ext) + 1
	}
	for len(stem) > max {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	stem = strings.TrimFunc(stem, spaceOrDot)
	if stem == "" {
		stem = fallbackStem
	}
	if ext == "" {
		return stem
	}
	return stem + "." + ext
}

// dropped says whether r is removed from names: invisible or
// layout-changing characters, which only serve to disguise a name.
func dropped(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp) ||
		(r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE // noncharacters
}

func spaceOrDot(r rune) bool { return r == '.' || unicode.IsSpace(r) }

// looksLikeExt says whether s is a file extension (1 to 5 ASCII letters
// and digits, a letter among them), rather than the tail of a name with a
// dot in it ("第3.5期", "v1.2").
func looksLikeExt(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	letter := false
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return letter
}

// isDeviceName says whether s is a name Windows reserves for a device.
func isDeviceName(s string) bool {
	switch u := strings.ToUpper(s); {
	case u == "CON", u == "PRN", u == "AUX", u == "NUL":
		return true
	case len(u) == 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) && u[3] >= '0' && u[3] <= '9':
		return true
	}
	return false
}
