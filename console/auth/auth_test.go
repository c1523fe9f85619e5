package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		name    string
		hash    string
		pass    string
		ok      bool
		wantErr bool
	}{
		{"right password", h, "correct horse battery", true, false},
		{"wrong password", h, "correct horse battery!", false, false},
		{"empty password", h, "", false, false},
		{"not phc", "plain", "x", false, true},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv", "x", false, true},
		{"bad params", "$argon2id$v=19$m=0,t=2,p=1$c2FsdA$a2V5", "x", false, true},
		{"huge memory", "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$a2V5", "x", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.hash, tt.pass)
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("VerifyPassword = %v, %v", ok, err)
			}
		})
	}
	if CheckPassword("short") == nil || CheckPassword(strings.Repeat("x", 129)) == nil || CheckPassword("长一点的中文密码口令") != nil {
		t.Fatal("password length rule")
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := NewSigner(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Issue("alice", "qj", RoleOperator, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok)
	if err != nil || c.Subject != "alice" || c.OrgID != "qj" || c.Role != RoleOperator {
		t.Fatalf("Verify = %+v, %v", c, err)
	}

	// A second signer over the same database (a restart) accepts the token.
	s2, err := NewSigner(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Verify(tok); err != nil {
		t.Fatalf("token not valid after restart: %v", err)
	}

	expired, _, _ := s.Issue("alice", "qj", RoleOperator, time.Hour)
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := s.Verify(expired); err != ErrTokenExpired {
		t.Fatalf("expired token: %v", err)
	}
	s.now = time.Now

	// Forgeries: another key, alg none, a changed claim, another audience.
	other, _ := NewSigner(ctx, mustDB(t))
	forged, _, _ := other.Issue("alice", "yn", RoleAdmin, time.Hour)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "alice",
		Audience: jwt.ClaimStrings{AudienceConsole}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Role: RoleAdmin})
	none.Header["kid"] = s.kid
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	hearing := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "alice",
		Audience: jwt.ClaimStrings{"hearing"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	hearing.Header["kid"] = s.kid
	hearingTok, _ := hearing.SignedString(s.secret)
	for name, bad := range map[string]string{"other key": forged, "alg none": noneTok, "tampered": tampered,
		"other audience": hearingTok, "garbage": "abc", "empty": ""} {
		if _, err := s.Verify(bad); err != ErrTokenInvalid {
			t.Errorf("%s: Verify = %v, want ErrTokenInvalid", name, err)
		}
	}
}

func TestThrottleBacksOffPerKey(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := NewThrottle(3, time.Second, 8*time.Second)
	th.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if w := th.Wait("user:a", "ip:1"); w != 0 {
			t.Fatalf("attempt %d must not wait, got %s", i, w)
		}
		th.Fail("user:a", "ip:1")
	}
	if w := th.Wait("user:a"); w != time.Second {
		t.Fatalf("after 3 failures wait %s, want 1s", w)
	}
	if w := th.Wait("user:b", "ip:2"); w != 0 {
		t.Fatalf("other keys must not wait, got %s", w)
	}
	for i := 0; i < 5; i++ {
		th.Fail("user:a", "ip:1")
	}
	if w := th.Wait("user:a"); w != 8*time.Second {
		t.Fatalf("wait is capped at 8s, got %s", w)
	}
	now = now.Add(8 * time.Second)
	if w := th.Wait("user:a"); w != 0 {
		t.Fatalf("after the delay, got %s", w)
	}
	th.Succeed("user:a")
	if w := th.Wait("user:a"); w != 0 {
		t.Fatal("success clears the user")
	}
	now = now.Add(-time.Second)
	if w := th.Wait("ip:1"); w == 0 {
		t.Fatal("the address keeps its count after a success of another key")
	}
}

func TestRoles(t *testing.T) {
	for _, r := range Roles {
		if !r.Valid() || !r.Can(PermOrgsRead) {
			t.Errorf("%s must be valid and read orgs", r)
		}
	}
	if Role("root").Valid() || RoleViewer.Can(PermUsersWrite) || RoleCommander.Can(PermUsersWrite) || !RoleAdmin.Can(PermUsersWrite) {
		t.Fatal("role table")
	}
}

// A join token admits one identity to one room with its rights, until it
// expires; it is no console token, and a console token is no join token.
func TestJoinTokens(t *testing.T) {
	ctx := context.Background()
	s, err := NewSigner(ctx, mustDB(t))
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := s.IssueJoin(JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "resident-7"}, Name: "王大妈", Room: "hearing-12", Org: "qj",
		Role: "participant", Rights: RoomRights{Publish: true, Subscribe: true}}, 30*time.Minute)
	if err != nil || time.Until(exp) > 30*time.Minute {
		t.Fatal(err, exp)
	}
	c, err := s.VerifyJoin(tok)
	if err != nil || c.Subject != "resident-7" || c.Name != "王大妈" || c.Room != "hearing-12" || !c.Rights.Publish || c.Rights.Admin {
		t.Fatalf("VerifyJoin = %+v, %v", c, err)
	}
	if _, err := s.Verify(tok); err != ErrTokenInvalid {
		t.Fatalf("a join token at the console: %v", err)
	}
	console, _, _ := s.Issue("alice", "qj", RoleAdmin, time.Hour)
	if _, err := s.VerifyJoin(console); err != ErrTokenInvalid {
		t.Fatalf("a console token as a join token: %v", err)
	}
	other, _ := NewSigner(ctx, mustDB(t))
	forged, _, _ := other.IssueJoin(JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "x"}, Room: "hearing-12", Rights: RoomRights{Admin: true}}, time.Hour)
	noRoom, _, _ := s.IssueJoin(JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "x"}}, time.Hour)
	for name, bad := range map[string]string{"other key": forged, "no room": noRoom, "garbage": "a.b.c"} {
		if _, err := s.VerifyJoin(bad); err != ErrTokenInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	s.now = func() time.Time { return time.Now().Add(31 * time.Minute) }
	if _, err := s.VerifyJoin(tok); err != ErrTokenExpired {
		t.Fatalf("expired: %v", err)
	}
}
