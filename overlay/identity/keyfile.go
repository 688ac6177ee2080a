package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrKeyFileMode is returned for a key file that others may read.
var ErrKeyFileMode = errors.New("identity: key file is readable by others")

// LoadOrCreate reads the key file at path, or, when it does not exist, makes
// a new key pair and writes it there with mode 0600 (its folder with 0700).
// created reports whether a new key was made. A key file whose mode lets the
// group or others read or write it is refused with a message saying how to
// fix it.
func LoadOrCreate(path string) (kp *KeyPair, created bool, err error) {
	kp, err = Load(path)
	if err == nil {
		return kp, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	kp, err = Generate(nil)
	if err != nil {
		return nil, false, err
	}
	if err := write(path, kp.SecretKey()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process made the key first; use theirs.
			kp, err = Load(path)
			return kp, false, err
		}
		return nil, false, err
	}
	return kp, true, nil
}

// Load reads an existing key file.
func Load(path string) (*KeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: opening key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: key file: %w", err)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; fix it with: chmod 600 %s", ErrKeyFileMode, path, mode, path)
	}
	b := make([]byte, SecretKeySize+1)
	n, err := f.Read(b)
	if err != nil {
		return nil, fmt.Errorf("identity: reading key file %s: %w", path, err)
	}
	kp, err := ParseSecretKey(b[:n])
	if err != nil {
		return nil, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	return kp, nil
}

// write stores data at path atomically with mode 0600.
func write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: creating key folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		// Link refuses to replace an existing file, so two processes racing
		// to create a key agree on one.
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	return nil
}
