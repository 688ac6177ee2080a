package chunker

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testPeerID = strings.Repeat("ab", 32)

func TestLinkRoundTrip(t *testing.T) {
	id := IDOf([]byte("link"))
	for _, tc := range []struct {
		name string
		link Link
	}{
		{"bare", Link{ID: id}},
		{"name", Link{ID: id, Name: "my file (1).tar.gz"}},
		{"unicode name", Link{ID: id, Name: "été&co=1?"}},
		{"peers", Link{ID: id, Peers: []PeerHint{{Addr: "127.0.0.1:4000"}, {Addr: "[::1]:4001"}, {PeerID: testPeerID, Addr: "host.example:9"}}}},
		{"all", Link{ID: id, Name: "x", Peers: []PeerHint{{Addr: "a:1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.link.String()
			got, err := ParseLink(s)
			if err != nil {
				t.Fatalf("ParseLink(%q): %v", s, err)
			}
			if !reflect.DeepEqual(got, tc.link) {
				t.Fatalf("ParseLink(%q) = %+v, want %+v", s, got, tc.link)
			}
			if got.String() != s {
				t.Fatalf("String after parse = %q, want %q", got.String(), s)
			}
		})
	}
}

func TestLinkForm(t *testing.T) {
	id := IDOf([]byte("link"))
	l := Link{ID: id, Name: "a b", Peers: []PeerHint{{Addr: "[::1]:7"}, {PeerID: testPeerID, Addr: "1.2.3.4:5"}}}
	want := "shoal:" + id.String() + "?name=a%20b&peer=[::1]:7&peer=" + testPeerID + "@1.2.3.4:5"
	if got := l.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestParseLinkErrors(t *testing.T) {
	id := IDOf([]byte("link")).String()
	for _, tc := range []struct{ name, in, want string }{
		{"scheme", "http:" + id, "must start with"},
		{"id", "shoal:sh1abc", "length"},
		{"port", "shoal:" + id + "?peer=1.2.3.4:0", "port"},
		{"noport", "shoal:" + id + "?peer=1.2.3.4", "host:port"},
		{"peerid", "shoal:" + id + "?peer=abcd@1.2.3.4:5", "64 hex"},
		{"peerid hex", "shoal:" + id + "?peer=" + strings.Repeat("zz", 32) + "@1.2.3.4:5", "not hex"},
		{"name slash", "shoal:" + id + "?name=a/b", "name"},
		{"name twice", "shoal:" + id + "?name=a&name=b", "twice"},
		{"escape", "shoal:" + id + "?name=%zz", "percent"},
		{"long", "shoal:" + id + "?name=" + strings.Repeat("a", MaxLinkLen), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLink(tc.in)
			if !errors.Is(err, ErrBadLink) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseLink(%q) error = %v, want ErrBadLink mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzParseLink(f *testing.F) {
	id := IDOf([]byte("fuzz"))
	f.Add(Link{ID: id}.String())
	f.Add(Link{ID: id, Name: "n a", Peers: []PeerHint{{Addr: "[::1]:1"}, {PeerID: testPeerID, Addr: "x:2"}}}.String())
	f.Add("shoal:" + id.String() + "?peer=&name=%41&other=1")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			return
		}
		out := l.String()
		l2, err := ParseLink(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip changed the link: %+v vs %+v", l, l2)
		}
	})
}
