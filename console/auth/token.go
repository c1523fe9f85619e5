package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// Token errors. They say only that the token is not accepted, and why in
// general terms, never which check of the signature failed.
var (
	ErrTokenMissing = errclass.New(errclass.Unauthenticated, "unauthenticated", "a bearer token is required")
	ErrTokenInvalid = errclass.New(errclass.Unauthenticated, "invalid_token", "the token is not valid")
	ErrTokenExpired = errclass.New(errclass.Unauthenticated, "token_expired", "the token has expired; log in again")
)

// Audience names what a token admits to. A console token opens the console
// API; later kinds (hearing links, meeting joins) get audiences of their own
// and are refused everywhere else.
const AudienceConsole = "console"

const issuer = "lookout"

// Claims are what a console token says.
type Claims struct {
	jwt.RegisteredClaims
	OrgID string `json:"org"`
	Role  Role   `json:"role"`
}

// Signer issues and verifies HMAC-SHA256 (JWT HS256) tokens with keys kept
// in the state database, so tokens stay valid across restarts.
type Signer struct {
	kid    string
	secret []byte
	keys   map[string][]byte
	now    func() time.Time
}

// NewSigner loads the signing keys, creating the first one when there is
// none.
func NewSigner(ctx context.Context, db *sql.DB) (*Signer, error) {
	s := &Signer{keys: map[string][]byte{}, now: time.Now}
	rows, err := db.QueryContext(ctx, `SELECT id, secret FROM signing_keys ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var secret []byte
		if err := rows.Scan(&id, &secret); err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
		s.keys[id], s.kid, s.secret = secret, id, secret
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if s.kid == "" {
		secret := make([]byte, 32)
		idb := make([]byte, 8)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		if _, err := rand.Read(idb); err != nil {
			return nil, err
		}
		id := hex.EncodeToString(idb)
		if _, err := db.ExecContext(ctx, `INSERT INTO signing_keys(id, secret, created_at) VALUES (?, ?, ?)`, id, secret, s.now().UnixMilli()); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		s.keys[id], s.kid, s.secret = secret, id, secret
	}
	return s, nil
}

// Issue returns a signed console token for a user, valid for ttl.
func (s *Signer) Issue(userID, orgID string, role Role, ttl time.Duration) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(ttl)
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{AudienceConsole},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        hex.EncodeToString(jti),
		},
		OrgID: orgID,
		Role:  role,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.secret)
	return signed, exp, err
}

// Verify checks a console token's signature, algorithm, issuer, audience and
// expiry, and returns its claims.
func (s *Signer) Verify(token string) (*Claims, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, s.keyOf,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(AudienceConsole),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case err == nil:
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	default:
		return nil, ErrTokenInvalid
	}
}
