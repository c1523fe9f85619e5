package rtsp

import (
	"testing"

	"go.uber.org/goleak"
)

// Every puller, session and client goroutine ends with its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
