package chunker

import (
	"errors"
	"strings"
	"testing"
)

func TestContentIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   ContentID
	}{
		{"zero", ContentID{}},
		{"ones", ContentID{0: 0xff, 31: 0xff}},
		{"hash", IDOf([]byte("hello"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.id.String()
			if len(s) != 55 || !strings.HasPrefix(s, "sh1") || strings.ToLower(s) != s {
				t.Fatalf("String() = %q: want 55 lower-case chars starting sh1", s)
			}
			for _, in := range []string{s, strings.ToUpper(s)} {
				got, err := ParseID(in)
				if err != nil || got != tc.id {
					t.Fatalf("ParseID(%q) = %v, %v; want %v", in, got, err, tc.id)
				}
			}
		})
	}
}

func TestParseIDErrors(t *testing.T) {
	good := IDOf([]byte("x")).String()
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "length"},
		{"short", good[:54], "length"},
		{"prefix", "sh2" + good[3:], "prefix"},
		{"digit", good[:10] + "1" + good[11:], "base32"},
		{"noncanonical", good[:54] + "z", "non-canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseID(tc.in)
			if !errors.Is(err, ErrBadID) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseID(%q) error = %v, want ErrBadID mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}
