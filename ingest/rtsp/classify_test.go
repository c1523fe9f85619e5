package rtsp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Errors as gortsplib and the network return them map to stable codes.
// (The peers tests see refused, unauthorized, not_found, timeout,
// stream_ended, unsupported_codec and no_video happen for real.)
func TestClassify(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		name       string
		err        error
		creds      bool
		want       string
		wantDetail string
	}{
		{"refused", dial(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), false, ReasonRefused, "refused"},
		{"unreachable", dial(&os.SyscallError{Syscall: "connect", Err: syscall.EHOSTUNREACH}), false, ReasonUnreachable, "cannot be reached"},
		{"dns", dial(&net.DNSError{Err: "no such host", Name: "cam.invalid", IsNotFound: true}), false, ReasonDNS, "cam.invalid"},
		{"tls unknown authority", &tls509{x509.UnknownAuthorityError{}}, false, ReasonTLS, "RTSPS"},
		{"tls remote alert", &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}, false, ReasonTLS, "handshake"},
		{"401 without credentials", liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized, Message: "Unauthorized"}, false, ReasonUnauthorized, "has none"},
		{"401 with credentials", liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized, Message: "Unauthorized"}, true, ReasonUnauthorized, "refused the user name or password"},
		{"403", liberrors.ErrClientBadStatusCode{Code: base.StatusForbidden, Message: "Forbidden"}, true, ReasonUnauthorized, "403"},
		{"auth setup", liberrors.ErrClientAuthSetup{Err: errors.New("no supported method")}, true, ReasonUnauthorized, "no supported method"},
		{"404", liberrors.ErrClientBadStatusCode{Code: base.StatusNotFound, Message: "Not Found"}, false, ReasonNotFound, "404"},
		{"500", liberrors.ErrClientBadStatusCode{Code: base.StatusInternalServerError, Message: "Internal Server Error"}, false, ReasonProtocol, "500"},
		{"tcp read timeout", liberrors.ErrClientTCPTimeout{}, false, ReasonTimeout, "read timeout"},
		{"udp read timeout", liberrors.ErrClientUDPTimeout{}, false, ReasonTimeout, "read timeout"},
		{"request timed out", liberrors.ErrClientRequestTimedOut{}, false, ReasonTimeout, "did not answer"},
		{"dial timeout", dial(context.DeadlineExceeded), false, ReasonTimeout, "deadline"},
		{"EOF", io.EOF, false, ReasonStreamEnded, "closed the connection"},
		{"reset", &net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, false, ReasonStreamEnded, "reset"},
		{"bad SDP", liberrors.ErrClientSDPInvalid{Err: errors.New("bad m= line")}, false, ReasonProtocol, "bad m= line"},
		{"unsupported codec", &mediaError{reason: ReasonUnsupportedCodec, detail: "M-JPEG"}, false, ReasonUnsupportedCodec, "M-JPEG"},
		{"wrapped", fmt.Errorf("describe: %w", io.EOF), false, ReasonStreamEnded, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := classify(tt.err, tt.creds)
			if got != tt.want || !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("classify(%v) = %q, %q; want %q with %q", tt.err, got, detail, tt.want, tt.wantDetail)
			}
		})
	}
}

// tls509 wraps a certificate error as crypto/tls does.
type tls509 struct{ err error }

func (e *tls509) Error() string { return "tls: failed to verify certificate: " + e.err.Error() }
func (e *tls509) Unwrap() error { return e.err }
