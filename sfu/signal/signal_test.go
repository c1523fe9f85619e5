package signal

import (
	"errors"
	"strings"
	"testing"
)

const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantType  string
		wantCode  string
		wantField string
	}{
		{"join", `{"type":"join","token":"abc.def.ghi"}`, TypeJoin, "", ""},
		{"join with id", `{"type":"join","id":"1","token":"t"}`, TypeJoin, "", ""},
		{"offer", `{"type":"offer","sdp":` + quote(sdp) + `,"tracks":{"a1":"microphone","v1":"camera"}}`, TypeOffer, "", ""},
		{"answer", `{"type":"answer","sdp":` + quote(sdp) + `}`, TypeAnswer, "", ""},
		{"candidate", `{"type":"candidate","target":"publisher","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0","sdp_mline_index":0}`, TypeCandidate, "", ""},
		{"end of candidates", `{"type":"candidate","target":"subscriber","candidate":""}`, TypeCandidate, "", ""},
		{"mute", `{"type":"mute","kind":"audio","muted":true}`, TypeMute, "", ""},
		{"layer", `{"type":"layer","identity":"bob","quality":"low"}`, TypeLayer, "", ""},
		{"host mute", `{"type":"host","action":"mute","identity":"bob","kind":"audio"}`, TypeHost, "", ""},
		{"host remove", `{"type":"host","action":"remove","identity":"bob"}`, TypeHost, "", ""},
		{"host lock", `{"type":"host","action":"lock","locked":true}`, TypeHost, "", ""},
		{"spotlight end", `{"type":"host","action":"spotlight"}`, TypeHost, "", ""},
		{"host admit", `{"type":"host","action":"admit","identity":"resident"}`, TypeHost, "", ""},
		{"host reject", `{"type":"host","action":"reject","identity":"resident"}`, TypeHost, "", ""},
		{"restart", `{"type":"restart"}`, TypeRestart, "", ""},
		{"chat", `{"type":"chat","text":"收到"}`, TypeChat, "", ""},
		{"leave", `{"type":"leave"}`, TypeLeave, "", ""},
		{"ping", `{"type":"ping"}`, TypePing, "", ""},

		{"empty", ``, "", CodeBadJSON, ""},
		{"not an object", `[1,2]`, "", CodeBadJSON, ""},
		{"null", `null`, "", CodeBadJSON, ""},
		{"truncated", `{"type":"join"`, "", CodeBadJSON, ""},
		{"trailing", `{"type":"ping"} {"type":"ping"}`, "", CodeBadJSON, ""},
		{"no type", `{"token":"x"}`, "", CodeBadField, "type"},
		{"type not a string", `{"type":5}`, "", CodeBadField, "type"},
		{"unknown type", `{"type":"dance"}`, "", CodeUnknownType, "type"},
		{"field of another type", `{"type":"ping","sdp":"v=0"}`, "", CodeBadField, "sdp"},
		{"unknown field", `{"type":"join","token":"t","admin":true}`, "", CodeBadField, "admin"},
		{"wrong field type", `{"type":"mute","kind":"audio","muted":"yes"}`, "", CodeBadField, "muted"},
		{"join without token", `{"type":"join"}`, "", CodeBadField, "token"},
		{"long token", `{"type":"join","token":"` + strings.Repeat("a", 5000) + `"}`, "", CodeBadField, "token"},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, "", CodeBadField, "id"},
		{"offer without sdp", `{"type":"offer"}`, "", CodeBadField, "sdp"},
		{"offer with junk sdp", `{"type":"offer","sdp":"hello"}`, "", CodeBadField, "sdp"},
		{"offer bad source", `{"type":"offer","sdp":` + quote(sdp) + `,"tracks":{"a":"radio"}}`, "", CodeBadField, "tracks"},
		{"answer with tracks", `{"type":"answer","sdp":` + quote(sdp) + `,"tracks":{"a":"camera"}}`, "", CodeBadField, "tracks"},
		{"candidate no target", `{"type":"candidate","candidate":"candidate:1"}`, "", CodeBadField, "target"},
		{"candidate junk", `{"type":"candidate","target":"publisher","candidate":"typ host"}`, "", CodeBadField, "candidate"},
		{"candidate mline", `{"type":"candidate","target":"publisher","candidate":"","sdp_mline_index":-1}`, "", CodeBadField, "sdp_mid"},
		{"mute bad kind", `{"type":"mute","kind":"screen","muted":true}`, "", CodeBadField, "kind"},
		{"mute no state", `{"type":"mute","kind":"video"}`, "", CodeBadField, "muted"},
		{"layer bad quality", `{"type":"layer","identity":"bob","quality":"4k"}`, "", CodeBadField, "quality"},
		{"layer no identity", `{"type":"layer","quality":"low"}`, "", CodeBadField, "identity"},
		{"host unknown action", `{"type":"host","action":"ban"}`, "", CodeBadField, "action"},
		{"host mute no kind", `{"type":"host","action":"mute","identity":"bob"}`, "", CodeBadField, "kind"},
		{"host remove nobody", `{"type":"host","action":"remove"}`, "", CodeBadField, "identity"},
		{"host admit nobody", `{"type":"host","action":"admit"}`, "", CodeBadField, "identity"},
		{"host lock no state", `{"type":"host","action":"lock"}`, "", CodeBadField, "locked"},
		{"chat empty", `{"type":"chat","text":"  "}`, "", CodeBadField, "text"},
		{"chat long", `{"type":"chat","text":"` + strings.Repeat("长", 700) + `"}`, "", CodeBadField, "text"},
		{"too large", `{"type":"join","token":"` + strings.Repeat("a", MaxMessage) + `"}`, "", CodeTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if m.Type != tt.wantType {
					t.Fatalf("type %q, want %q", m.Type, tt.wantType)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode = %+v, %v; want error %s", m, err, tt.wantCode)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Fatalf("error %s field %q (%s), want %s field %q", e.Code, e.Field, e.Message, tt.wantCode, tt.wantField)
			}
			if e.Message == "" {
				t.Fatal("an error without a message")
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	m, err := Decode([]byte(`{"type":"candidate","id":"c7","target":"subscriber","candidate":"candidate:9 1 tcp 5 10.0.0.1 9 typ host tcptype passive","sdp_mid":"1","sdp_mline_index":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "c7" || m.Target != TargetSubscriber || m.SDPMid != "1" || m.SDPMLineIndex == nil || *m.SDPMLineIndex != 1 || !strings.HasPrefix(m.Candidate, "candidate:9") {
		t.Fatalf("decoded %+v", m)
	}
}

func TestServerMessageEncode(t *testing.T) {
	got := string((&ServerMessage{Type: TypeMuteChanged, Identity: "bob", Kind: "audio", Muted: Ptr(false), By: "host"}).Encode())
	want := `{"type":"mute_changed","identity":"bob","kind":"audio","muted":false,"by":"host"}`
	if got != want {
		t.Fatalf("encoded %s, want %s", got, want)
	}
	got = string(ErrorMessage(&Error{Code: CodeBadField, Field: "sdp", Message: "x"}, "7").Encode())
	if got != `{"type":"error","id":"7","code":"bad_field","message":"x","field":"sdp"}` {
		t.Fatalf("error encoded %s", got)
	}
}

func quote(s string) string {
	return `"` + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s) + `"`
}
