package events

import (
	"strconv"
	"strings"
)

// maxIDLen is the longest id formatID makes: 19 digits of epoch, '-', 20 of
// sequence. Longer input is rejected before any parsing.
const maxIDLen = 19 + 1 + 20

// appendID appends the id "<epoch>-<seq>" to dst.
func appendID(dst []byte, epoch int64, seq uint64) []byte {
	dst = strconv.AppendInt(dst, epoch, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 10)
}

// formatID returns the id "<epoch>-<seq>".
func formatID(epoch int64, seq uint64) string {
	var a [maxIDLen + 1]byte
	return string(appendID(a[:0], epoch, seq))
}

// parseID reads an id made by formatID: two canonical decimal numbers (no
// sign, no leading zeros, no spaces) joined by '-'. A sequence of 0 is
// accepted: it is the position before the first event of an epoch, which
// ServeSSE hands to a client that has seen no event yet. Whatever parseID
// accepts, formatID spells the same way; it reads the Last-Event-ID header,
// which is untrusted input.
func parseID(s string) (epoch int64, seq uint64, ok bool) {
	if len(s) > maxIDLen {
		return 0, 0, false
	}
	e, q, found := strings.Cut(s, "-")
	if !found || !canonicalDigits(e) || !canonicalDigits(q) {
		return 0, 0, false
	}
	epoch, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	seq, err = strconv.ParseUint(q, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return epoch, seq, true
}

// canonicalDigits reports whether s is a non-empty run of ASCII digits with
// no leading zero (other than "0" itself).
func canonicalDigits(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
