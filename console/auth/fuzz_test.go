package auth

import (
	"context"
	"testing"
	"time"
)

// No input makes Verify panic or accept a token this signer did not issue.
func FuzzVerifyToken(f *testing.F) {
	db := mustDBF(f)
	s, err := NewSigner(context.Background(), db)
	if err != nil {
		f.Fatal(err)
	}
	good, _, _ := s.Issue("admin", "yn", RoleAdmin, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.")
	f.Add(good[:len(good)-2])
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err != nil {
			return
		}
		if token != good || c.Subject != "admin" {
			t.Fatalf("accepted a token it did not issue: %q", token)
		}
	})
}

// VerifyPassword never panics on a stored hash, however broken.
func FuzzVerifyPasswordHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5", "pw")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$", "")
	f.Add("$$$$$", "x")
	f.Fuzz(func(t *testing.T, hash, password string) {
		_, _ = VerifyPassword(hash, password)
	})
}
