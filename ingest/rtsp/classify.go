package rtsp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// classify turns the error that ended an attempt into a reason code and a
// human detail. hasCredentials tells whether the URL carried a user, which
// changes what a 401 means. The detail is not yet scrubbed of secrets.
func classify(err error, hasCredentials bool) (reason, detail string) {
	if err == nil {
		return ReasonStreamEnded, "the stream ended"
	}
	var media *mediaError
	if errors.As(err, &media) {
		return media.reason, media.detail
	}

	var status liberrors.ErrClientBadStatusCode
	if errors.As(err, &status) {
		answer := fmt.Sprintf("%d %s", status.Code, status.Message)
		switch status.Code {
		case base.StatusUnauthorized:
			if !hasCredentials {
				return ReasonUnauthorized, "the camera asks for credentials and the URL has none (" + answer + ")"
			}
			return ReasonUnauthorized, "the camera refused the user name or password (" + answer + ")"
		case base.StatusForbidden:
			return ReasonUnauthorized, "the camera forbids this user the stream (" + answer + ")"
		case base.StatusNotFound:
			return ReasonNotFound, "the camera has no stream at this path (" + answer + ")"
		default:
			return ReasonProtocol, "the camera answered " + answer
		}
	}
	var authSetup liberrors.ErrClientAuthSetup
	if errors.As(err, &authSetup) {
		return ReasonUnauthorized, "cannot answer the camera's authentication challenge: " + authSetup.Err.Error()
	}

	if errors.Is(err, syscall.ECONNREFUSED) {
		return ReasonRefused, "connection refused: " + err.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ReasonDNS, "the camera's host name does not resolve: " + err.Error()
	}
	if isTLSError(err) {
		return ReasonTLS, "RTSPS: " + err.Error()
	}
	if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return ReasonUnreachable, "the camera cannot be reached: " + err.Error()
	}

	var (
		tcpTimeout liberrors.ErrClientTCPTimeout
		udpTimeout liberrors.ErrClientUDPTimeout
		reqTimeout liberrors.ErrClientRequestTimedOut
		netErr     net.Error
	)
	switch {
	case errors.As(err, &tcpTimeout), errors.As(err, &udpTimeout):
		return ReasonTimeout, "no packets from the camera within the read timeout (" + err.Error() + ")"
	case errors.As(err, &reqTimeout):
		return ReasonTimeout, "the camera did not answer within the read timeout"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout, err.Error()
	}

	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return ReasonStreamEnded, "the camera closed the connection (" + err.Error() + ")"
	}
	return ReasonProtocol, err.Error()
}

func isTLSError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		alert    tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		op       *net.OpError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		// An alert the camera sent: crypto/tls wraps it so, in an unexported type.
		errors.As(err, &op) && op.Op == "remote error"
}
