package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST credential scheme is defined with HMAC-SHA1
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	pionturn "github.com/pion/turn/v5"
)

// Credentials follow the TURN REST API scheme
// (https://datatracker.ietf.org/doc/html/draft-uberti-behave-turn-rest-00),
// which is what coturn's use-auth-secret checks and what a browser's
// RTCIceServer carries:
//
//	username = "<unix expiry>:<identity>"
//	password = base64(HMAC-SHA1(secret, username))
//
// The signaling server mints them for a client that has joined a meeting;
// the TURN server needs no user list, only the shared secret.

// maxIdentityLen caps the identity in a username, well below the 509
// bytes that STUN allows a USERNAME (RFC 8489, section 14.3).
const maxIdentityLen = 256

// maxExpiryDigits: 18 decimal digits always fit an int64.
const maxExpiryDigits = 18

var errMalformedUsername = errors.New("malformed username")

// ICEServer is one entry of a browser's RTCIceServer list, in its JSON
// shape, so the signaling server can hand it over as it is.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Credentials mints a TURN username and password for identity (who the
// client is, e.g. a participant id; it shows in the server's logs),
// valid until expires = now + ttl, rounded down to the second. A ttl of
// zero or less gives credentials that are already expired.
//
// The identity is sanitised rather than refused: ':' (the separator of
// the username), control characters and invalid UTF-8 become '_', and it
// is cut to 256 bytes. It is a label only; what the server trusts is the
// HMAC over the whole username.
//
// The expiry bounds when an allocation can be made or refreshed, not the
// life of one already made: that ends at most one allocation lifetime
// (10 minutes unless the client asks for less) after its last refresh.
func (s *Server) Credentials(identity string, ttl time.Duration) (username, password string, expires time.Time) {
	expires = time.Unix(time.Now().Add(ttl).Unix(), 0)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + sanitizeIdentity(identity)
	return username, s.password(username), expires
}

// ICEServers returns the RTCIceServer entry for this server: a turn: URL
// per transport that is on (RFC 7065, "turn:host:port?transport=udp"),
// with credentials from Credentials. host is the name clients reach the
// server by, usually the host of the signaling request without its port;
// if it is empty, the relay IP (Params.RelayIP) is used, which is the
// listen IP unless the deployment said otherwise.
func (s *Server) ICEServers(identity string, ttl time.Duration, host string) []ICEServer {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		host = s.relayIP.String()
	}
	var urls []string
	if s.udp != nil {
		urls = append(urls, turnURL(host, s.udp.LocalAddr(), "udp"))
	}
	if s.tcp != nil {
		urls = append(urls, turnURL(host, s.tcp.Addr(), "tcp"))
	}
	username, password, _ := s.Credentials(identity, ttl)
	return []ICEServer{{URLs: urls, Username: username, Credential: password}}
}

func turnURL(host string, addr net.Addr, transport string) string {
	_, port, _ := net.SplitHostPort(addr.String())
	return "turn:" + net.JoinHostPort(host, port) + "?transport=" + transport
}

// password is base64(HMAC-SHA1(secret, username)).
func (s *Server) password(username string) string {
	mac := hmac.New(sha1.New, s.secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// sanitizeIdentity makes identity safe to put after the username's ':'.
func sanitizeIdentity(identity string) string {
	identity = strings.ToValidUTF8(identity, "_")
	identity = strings.Map(func(r rune) rune {
		if r == ':' || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, identity)
	if len(identity) > maxIdentityLen {
		cut := maxIdentityLen
		for cut > 0 && !utf8.RuneStart(identity[cut]) {
			cut--
		}
		identity = identity[:cut]
	}
	return identity
}

// parseUsername splits a TURN REST username into its expiry and identity.
// It is strict, since the username comes from the network before any
// check of the HMAC: the expiry is 1 to 18 ASCII digits (no sign, no
// spaces), then exactly one ':', then the identity, which has no ':' of
// its own (Credentials never makes one) and may be empty.
func parseUsername(username string) (expires time.Time, identity string, err error) {
	expiry, identity, ok := strings.Cut(username, ":")
	if !ok {
		return time.Time{}, "", errMalformedUsername
	}
	if len(expiry) == 0 || len(expiry) > maxExpiryDigits {
		return time.Time{}, "", errMalformedUsername
	}
	for i := 0; i < len(expiry); i++ {
		if expiry[i] < '0' || expiry[i] > '9' {
			return time.Time{}, "", errMalformedUsername
		}
	}
	if strings.Contains(identity, ":") {
		return time.Time{}, "", errMalformedUsername
	}
	unix, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil { // cannot happen with at most 18 digits
		return time.Time{}, "", errMalformedUsername
	}
	return time.Unix(unix, 0), identity, nil
}

// authenticate is the server's AuthHandler, called for every request that
// carries MESSAGE-INTEGRITY (Allocate, Refresh, CreatePermission,
// ChannelBind). It refuses a foreign realm, a malformed or expired
// username; otherwise it returns the long-term key for the password the
// username should have, and pion checks the request's MESSAGE-INTEGRITY
// against it with hmac.Equal (constant time). A wrong password therefore
// fails in pion, and is logged from the OnAuth event (logAuthFailure).
//
// It is ours, not pion's LongTermTURNRESTAuthHandler, because that one
// takes a username without ':' as all expiry (so "1999999999" passes),
// keeps only the text up to a second ':' as the user id, does not check
// the realm (pion derives the key from the realm the client names), and
// logs each refusal as an error, which anyone on the internet could use
// to flood the logs.
func (s *Server) authenticate(ra *pionturn.RequestAttributes) (userID string, key []byte, ok bool) {
	if ra.Realm != s.realm {
		s.refused(ra, "unknown realm")
		return "", nil, false
	}
	expires, identity, err := parseUsername(ra.Username)
	if err != nil {
		s.refused(ra, err.Error())
		return "", nil, false
	}
	if time.Now().After(expires) {
		s.refused(ra, "expired username")
		return "", nil, false
	}
	return identity, pionturn.GenerateAuthKey(ra.Username, s.realm, s.password(ra.Username)), true
}

// refused logs a refusal at debug: failures are routine (a stale page,
// a scanner), and the username and realm are the client's own claims,
// never the password or the secret.
func (s *Server) refused(ra *pionturn.RequestAttributes, reason string) {
	s.log.Debug("turn auth refused", "reason", reason,
		"src", addrString(ra.SrcAddr), "username", ra.Username, "realm", ra.Realm,
		"method", ra.Method.String())
}

// logAuthFailure is the OnAuth event handler: pion calls it after it has
// checked MESSAGE-INTEGRITY, so a false verdict is a wrong password.
func (s *Server) logAuthFailure(src, _ net.Addr, protocol, username, realm, method string, verdict bool) {
	if verdict {
		return
	}
	s.log.Debug("turn auth refused", "reason", "wrong password",
		"src", addrString(src), "transport", protocol, "username", username, "realm", realm,
		"method", method)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
