package seed

import (
	"encoding/json"
	"testing"
)

func TestParseSizeAndRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"50MB", 50_000_000, true},
		{"50 mb", 50_000_000, true},
		{"10MiB", 10 << 20, true},
		{"1.5GiB", 3 << 29, true},
		{"64KiB", 64 << 10, true},
		{"2k", 2000, true},
		{"10MiB/s", 10 << 20, true},
		{"-1", 0, false},
		{"ten", 0, false},
		{"5 parsecs", 0, false},
	} {
		got, err := ParseRate(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRate(%q) = %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	var fc FileConfig
	if err := json.Unmarshal([]byte(`{"upload_limit": "10MiB/s", "download_limit": 1000}`), &fc); err != nil || fc.UploadLimit != 10<<20 || fc.DownloadLimit != 1000 {
		t.Fatalf("config rates: %+v, %v", fc, err)
	}
	if err := json.Unmarshal([]byte(`{"upload_limit": "fast"}`), &fc); err == nil {
		t.Fatal("a rate of \"fast\" was accepted")
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 20: "10.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
