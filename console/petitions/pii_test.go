package petitions

import (
	"bytes"
	"testing"
)

func TestMasks(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{MaskName("张三丰"), "张**"},
		{MaskName("李"), "李"},
		{MaskName(""), ""},
		{MaskPhone("13812345678"), "138****5678"},
		{MaskPhone("+8613812345678"), "+86*******5678"},
		{MaskPhone("1234567"), "*******"},
		{MaskIDNumber("53062319900101123X"), "5306**********123X"},
		{MaskIDNumber("1234"), "****"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestValidIDNumber(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"11010519491231002X", true}, // the standard's example
		{"110105194912310021", false},
		{"11010519491231002x", false}, // the check character is a capital X
		{"1101051949123100", false},
		{"A1010519491231002X", false},
		{"", false},
	} {
		if got := ValidIDNumber(tc.id); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestValidPhone(t *testing.T) {
	for _, tc := range []struct {
		phone string
		want  bool
	}{
		{"13812345678", true},
		{"+8613812345678", true},
		{"0870-1234567", false},
		{"123456", false},
		{"１３８１２３４５６７８", false}, // full-width digits
	} {
		if got := ValidPhone(tc.phone); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.phone, got, tc.want)
		}
	}
}

func TestSealer(t *testing.T) {
	s, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Seal("pet-1", "11010519491231002X")
	b := s.Seal("pet-1", "11010519491231002X")
	if bytes.Equal(a, b) || bytes.Contains(a, []byte("1949")) {
		t.Fatal("sealing is not randomised, or leaks the value")
	}
	if got, err := s.Open("pet-1", a); err != nil || got != "11010519491231002X" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open("pet-2", a); err != ErrUnsealed {
		t.Fatalf("another petition's value opened: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open("pet-1", a); err != ErrUnsealed {
		t.Fatalf("another key opened it: %v", err)
	}
	if _, err := s.Open("pet-1", a[:5]); err != ErrUnsealed {
		t.Fatalf("a cut value: %v", err)
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a short key was taken")
	}
}

// FuzzValidIDNumber: any input is judged without a panic, and the
// accepted ones keep their shape.
func FuzzValidIDNumber(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110105194912310021", "", "X", "00000000000000000\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidIDNumber(id) && (len(id) != 18 || MaskIDNumber(id)[4:14] != "**********") {
			t.Fatalf("accepted %q", id)
		}
	})
}
