package rtsp

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"no credentials", "rtsp://10.0.0.5:554/Streaming/Channels/101", "rtsp://10.0.0.5:554/Streaming/Channels/101"},
		{"user only", "rtsp://admin@10.0.0.5/live", "rtsp://admin@10.0.0.5/live"},
		{"user and password", "rtsp://admin:Hik12345@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"},
		{"escaped password", "rtsps://admin:p%40ss%2Fw%3Ard@cam.example/s", "rtsps://admin:***@cam.example/s"},
		{"empty password", "rtsp://admin:@10.0.0.5/live", "rtsp://admin:***@10.0.0.5/live"},
		{"query password", "rtsp://10.0.0.5/live?user=admin&password=Hik12345&ch=1", "rtsp://10.0.0.5/live?user=admin&password=***&ch=1"},
		{"query pwd, any case", "rtsp://10.0.0.5/live?PWD=x", "rtsp://10.0.0.5/live?PWD=***"},
		{"unparsable", "rtsp://admin:se cret@[::1", "***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubHidesEveryFormOfTheSecrets(t *testing.T) {
	u, err := url.Parse("rtsp://admin:p%40ss%2Fword@cam/live?pwd=q%20w")
	if err != nil {
		t.Fatal(err)
	}
	secrets := secretsOf(u)
	text := "failed for p@ss/word, p%40ss%2Fword, q w and q%20w"
	got := scrub(text, secrets)
	for _, s := range []string{"p@ss/word", "p%40ss%2Fword", "q w", "q%20w"} {
		if strings.Contains(got, s) {
			t.Errorf("scrub left %q in %q", s, got)
		}
	}
}
