package seed_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/seed"
)

// TestConfigFile reads every key of the config file, lets explicit
// settings win, and refuses unknown keys.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	os.WriteFile(path, []byte(`{"listen": "0.0.0.0:9", "api": "127.0.0.1:8", "gateway": "off", "bootstrap": ["192.0.2.7:7745"],
		"lan_discovery": true, "no_udp_batching": true, "no_direct_io": true, "relay": true, "use_relays": true, "upload_limit": 5, "download_limit": 6,
		"gateway_cache": "1GiB", "registry": "127.0.0.1:5000", "registry_upstream": "https://r.example", "registry_auth": "/a.json"}`), 0o644)
	fc, err := seed.LoadConfigFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	var c seed.Config
	fc.Apply(&c)
	want := seed.Config{Listen: "0.0.0.0:9", API: "127.0.0.1:8", Gateway: "off", Bootstrap: []string{"192.0.2.7:7745"},
		LANDiscovery: true, NoUDPBatching: true, NoDirectIO: true, Relay: true, UseRelays: true, UploadLimit: 5, DownloadLimit: 6, GatewayCache: 1 << 30,
		Registry: "127.0.0.1:5000", RegistryUpstream: "https://r.example", RegistryAuth: "/a.json"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("applied config %+v, want %+v", c, want)
	}
	explicit := seed.Config{Listen: "127.0.0.1:1", UploadLimit: 1}
	fc.Apply(&explicit)
	if explicit.Listen != "127.0.0.1:1" || explicit.UploadLimit != 1 {
		t.Fatalf("the file overrode explicit settings: %+v", explicit)
	}

	var def seed.Config
	if err := def.FillDefaults(); err != nil || def.GatewayCache != seed.DefaultGatewayCache {
		t.Fatalf("default gateway_cache %d (%v), want %d", def.GatewayCache, err, seed.DefaultGatewayCache)
	}
	if neg := (seed.Config{GatewayCache: -1}); neg.FillDefaults() == nil {
		t.Fatal("a negative gateway_cache was accepted")
	}

	os.WriteFile(path, []byte(`{"no_udp_batchin": true}`), 0o644)
	if _, err := seed.LoadConfigFile(path, true); err == nil || !strings.Contains(err.Error(), "no_udp_batchin") {
		t.Fatalf("unknown key: %v, want an error naming it", err)
	}
	if fc, err := seed.LoadConfigFile(filepath.Join(dir, "missing.json"), false); err != nil || !reflect.DeepEqual(fc, seed.FileConfig{}) {
		t.Fatalf("missing file: %+v, %v; want the zero config and no error", fc, err)
	}
}
