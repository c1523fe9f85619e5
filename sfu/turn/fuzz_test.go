package turn

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseUsername: parseUsername reads what the network sends before any
// check of the HMAC. It must not panic, and what it accepts must be
// exactly the strict form: digits, one ':', an identity without ':'.
// What Credentials makes must parse back to the same parts.
func FuzzParseUsername(f *testing.F) {
	for _, seed := range []string{
		"1700000000:alice", "1700000000:", ":alice", "alice", "", ":",
		"+1700000000:alice", "-1:alice", " 1:alice", "1 :alice", "0x10:alice",
		"1700000000:a:b", "999999999999999999:x", "9999999999999999999:x",
		"1700000000:\xff\x00", "1700000000:é",
	} {
		f.Add(seed)
	}
	s := &Server{secret: testSecret}
	f.Fuzz(func(t *testing.T, username string) {
		expires, identity, err := parseUsername(username)
		if err == nil {
			expiry, rest, ok := strings.Cut(username, ":")
			if !ok || rest != identity || strings.Contains(identity, ":") || expiry == "" ||
				strings.Trim(expiry, "0123456789") != "" {
				t.Fatalf("accepted %q as (%v, %q)", username, expires, identity)
			}
			if n, err := strconv.ParseInt(expiry, 10, 64); err != nil || n != expires.Unix() {
				t.Fatalf("%q: expiry %v, want %s", username, expires.Unix(), expiry)
			}
		}

		// Any string as an identity makes a username that parses back.
		user, _, exp := s.Credentials(username, 0)
		gotExp, gotID, err := parseUsername(user)
		if err != nil || !gotExp.Equal(exp) || gotID != sanitizeIdentity(username) || len(gotID) > maxIdentityLen {
			t.Fatalf("Credentials(%q) made %q, which parses to (%v, %q, %v)", username, user, gotExp, gotID, err)
		}
	})
}
