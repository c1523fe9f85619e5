package rtsp

import (
	"net/url"
	"slices"
	"strings"
)

// secretQueryKeys are the query parameters, lowercase, in which some
// cameras take a password.
var secretQueryKeys = []string{"password", "passwd", "pass", "pwd"}

// redacted stands in for a secret.
const redacted = "***"

// Redact returns rawURL with its password replaced by "***"; the user name
// stays. A password given as a query parameter (password=, pwd=, ...) is
// replaced too. A URL that does not parse is returned as "***" alone, since
// nothing of it can be shown safely. This is the only form of a camera URL
// that this package logs or reports.
func Redact(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return redacted
	}
	hidePassword := false
	if u.User != nil {
		_, hidePassword = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		params := strings.Split(u.RawQuery, "&")
		for i, p := range params {
			k, _, ok := strings.Cut(p, "=")
			if ok && slices.Contains(secretQueryKeys, strings.ToLower(k)) {
				params[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(params, "&")
	}
	out := u.String()
	if hidePassword {
		// url.UserPassword would escape the stars. The first '@' ends the
		// user name, in which String escapes any '@' of its own.
		out = strings.Replace(out, "@", ":"+redacted+"@", 1)
	}
	return out
}

// secretsOf lists the secrets in u, in the forms they may take in an error
// text: the password and secret query values, each decoded and as written.
func secretsOf(u *url.URL) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if u.User != nil {
		if pass, ok := u.User.Password(); ok {
			add(pass)
			add(url.PathEscape(pass))
			add(url.QueryEscape(pass))
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !slices.Contains(secretQueryKeys, strings.ToLower(k)) {
			continue
		}
		add(v)
		if dec, err := url.QueryUnescape(v); err == nil {
			add(dec)
		}
	}
	// The longest first, so that a secret holding another is hidden whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// scrub replaces every secret in s by "***". Texts of errors from the
// network or the camera should not hold the URL's secrets, but a camera
// may echo anything.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}
