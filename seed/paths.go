package seed

import (
	"errors"
	"os"
	"path/filepath"
)

// DefaultPort is the UDP port a node listens on unless told otherwise. It
// carries QUIC and IPv8 datagrams on one socket. Port 0 picks any free port.
const DefaultPort = 7745

// DefaultAPIPort is the loopback TCP port of the control API.
const DefaultAPIPort = 7746

// Environment variables that override the default places. Flags override
// these in turn.
const (
	EnvDataDir = "SHOAL_DATA_DIR" // the data folder
	EnvConfig  = "SHOAL_CONFIG"   // the config file
)

// DefaultDataDir returns the data folder: $SHOAL_DATA_DIR, else
// $XDG_DATA_HOME/shoal, else ~/.local/share/shoal.
func DefaultDataDir() (string, error) {
	if d := os.Getenv(EnvDataDir); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "shoal"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("no home folder; set " + EnvDataDir)
	}
	return filepath.Join(home, ".local", "share", "shoal"), nil
}

// DefaultConfigFile returns the config file: $SHOAL_CONFIG, else
// $XDG_CONFIG_HOME/shoal/config.json, else ~/.config/shoal/config.json.
func DefaultConfigFile() (string, error) {
	if f := os.Getenv(EnvConfig); f != "" {
		return f, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "shoal", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("no home folder; set " + EnvConfig)
	}
	return filepath.Join(home, ".config", "shoal", "config.json"), nil
}
