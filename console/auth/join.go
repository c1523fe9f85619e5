package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AudienceRoomJoin is the audience of a meeting join token: it admits one
// identity to one room, with the rights it names, until it expires, and is
// refused by the console API.
const AudienceRoomJoin = "room-join"

// RoomRights are what a participant may do in a room.
type RoomRights struct {
	Publish     bool `json:"publish"`      // send audio and video
	Subscribe   bool `json:"subscribe"`    // receive the others'
	PublishData bool `json:"publish_data"` // send chat and data messages
	Admin       bool `json:"admin"`        // host controls: mute, remove, lock, spotlight
}

// JoinClaims are what a join token says.
type JoinClaims struct {
	jwt.RegisteredClaims
	// Subject (the identity) is the participant's stable id in the room.
	Name   string     `json:"name"`
	Room   string     `json:"room"`
	Org    string     `json:"org"`
	Role   string     `json:"role"` // host, participant or viewer: what the console shows
	Rights RoomRights `json:"rights"`
	// Lobby says the participant waits in the room's lobby until a host
	// admits them (a resident joining a hearing by its link), unless they
	// were admitted before while the room lasts.
	Lobby bool `json:"lobby,omitempty"`
	// Link is the id of the hearing link the token was exchanged for: the
	// SFU refuses the token once that link is no longer the hearing's
	// (revoked, re-issued) or the hearing is over.
	Link string `json:"link,omitempty"`
}

// IssueJoin returns a signed join token valid for ttl.
func (s *Signer) IssueJoin(c JoinClaims, ttl time.Duration) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(ttl)
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   c.Subject,
		Audience:  jwt.ClaimStrings{AudienceRoomJoin},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        hex.EncodeToString(jti),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.secret)
	return signed, exp, err
}

// VerifyJoin checks a join token's signature, algorithm, issuer, audience
// and expiry, and returns its claims. A console token is not a join token.
func (s *Signer) VerifyJoin(token string) (*JoinClaims, error) {
	var claims JoinClaims
	_, err := jwt.ParseWithClaims(token, &claims, s.keyOf,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(AudienceRoomJoin),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case err == nil && claims.Subject != "" && claims.Room != "":
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	default:
		return nil, ErrTokenInvalid
	}
}

// keyOf finds the key a token names in its header.
func (s *Signer) keyOf(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	key, ok := s.keys[kid]
	if !ok {
		return nil, errors.New("unknown key id")
	}
	return key, nil
}

// Derive returns a secret for another use of the server's key (the TURN
// server's credential secret), so that it lasts as long as the key does
// without being the key.
func (s *Signer) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("lookout derived secret: " + purpose))
	return m.Sum(nil)
}
