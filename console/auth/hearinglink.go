package auth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// AudienceHearingLink is the audience of a hearing link's token: it opens
// one hearing's resident page for one person, from shortly before the
// hearing to its expiry, and nothing else. The console API, the wall, the
// cameras and the meeting signaling all refuse it (they verify other
// audiences); the resident's page exchanges it, after the checks of the
// hearing (revoked? another device?), for a join token of that hearing's
// room only, which waits in its lobby.
const AudienceHearingLink = "hearing-link"

// ErrTokenNotYet: a hearing link opened before it is valid.
var ErrTokenNotYet = errclass.New(errclass.Unauthenticated, "token_not_yet_valid", "the link is not valid yet")

// HearingLinkClaims are what a hearing link says: the hearing (Hearing)
// and the link's own id (ID, which the hearing keeps as its current link:
// a re-issued link revokes the one before).
type HearingLinkClaims struct {
	jwt.RegisteredClaims
	Hearing string `json:"hearing"`
}

// IssueHearingLink signs a link to hearing, valid from notBefore until
// expires, with its own id.
func (s *Signer) IssueHearingLink(hearing, linkID string, notBefore, expires time.Time) (string, error) {
	c := HearingLinkClaims{Hearing: hearing, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   "resident",
		Audience:  jwt.ClaimStrings{AudienceHearingLink},
		IssuedAt:  jwt.NewNumericDate(s.now()),
		NotBefore: jwt.NewNumericDate(notBefore),
		ExpiresAt: jwt.NewNumericDate(expires),
		ID:        linkID,
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.secret)
}

// VerifyHearingLink checks a hearing link's signature, algorithm, issuer,
// audience and validity: ErrTokenExpired after it, ErrTokenNotYet before
// it (with the claims, so that the page can say when), ErrTokenInvalid
// for anything else.
func (s *Signer) VerifyHearingLink(token string) (*HearingLinkClaims, error) {
	var claims HearingLinkClaims
	_, err := jwt.ParseWithClaims(token, &claims, s.keyOf,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(AudienceHearingLink),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case err == nil && claims.Hearing != "" && claims.ID != "":
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired) && claims.Hearing != "":
		return nil, ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet) && claims.Hearing != "":
		return &claims, ErrTokenNotYet
	default:
		return nil, ErrTokenInvalid
	}
}

// HearingOfLink returns the hearing a link names when its signature is
// good, whatever its times (to audit a refused link against its hearing);
// "" for a forged one.
func (s *Signer) HearingOfLink(token string) string {
	var claims HearingLinkClaims
	_, err := jwt.ParseWithClaims(token, &claims, s.keyOf,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(AudienceHearingLink),
		jwt.WithoutClaimsValidation(),
	)
	if err != nil {
		return ""
	}
	return claims.Hearing
}
