package main

import "testing"

func TestSplitLinkPathAndRange(t *testing.T) {
	for _, tc := range []struct{ in, link, rel string }{
		{"sh1abc", "sh1abc", ""},
		{"sh1abc/a/b.txt", "sh1abc", "a/b.txt"},
		{"shoal:sh1abc/a.txt?name=x&peer=1.2.3.4:5", "shoal:sh1abc?name=x&peer=1.2.3.4:5", "a.txt"},
		{"shoal:sh1abc?name=x&peer=1.2.3.4:5/d/a.txt", "shoal:sh1abc?name=x&peer=1.2.3.4:5", "d/a.txt"},
	} {
		if l, r := splitLinkPath(tc.in); l != tc.link || r != tc.rel {
			t.Errorf("splitLinkPath(%q) = %q, %q; want %q, %q", tc.in, l, r, tc.link, tc.rel)
		}
	}
	for _, tc := range []struct {
		in       string
		off, n   int64
		wantFail bool
	}{
		{"", 0, -1, false}, {"10-19", 10, 10, false}, {"5-", 5, -1, false}, {"-7", -7, -1, false},
		{"9-3", 0, 0, true}, {"x", 0, 0, true}, {"-0", 0, 0, true}, {"a-b", 0, 0, true},
	} {
		off, n, err := parseRange(tc.in)
		if (err != nil) != tc.wantFail || !tc.wantFail && (off != tc.off || n != tc.n) {
			t.Errorf("parseRange(%q) = %d, %d, %v; want %d, %d, fail %v", tc.in, off, n, err, tc.off, tc.n, tc.wantFail)
		}
	}
}
