// Package keys manages the server's own key material: the master key that
// seals secrets at rest, the token-signing key and certificate, and the TLS
// key. Keys live in storage (so every node of a cluster shares them) sealed
// under the master key, which lives outside the database.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the master key's file name in the data directory.
const MasterKeyFile = "master.key"

// Box seals secrets with AES-256-GCM under the master key.
type Box struct{ aead cipher.AEAD }

var errSealed = errors.New("keys: sealed secret is corrupt or was sealed under another master key")

// NewBox returns a Box for a 32-byte master key.
func NewBox(master []byte) (*Box, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("keys: master key must be 32 bytes, got %d", len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; the nonce is prepended.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errSealed
	}
	pt, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, errSealed
	}
	return pt, nil
}

// LoadMasterKey returns the master key: from env (base64, for clusters whose
// nodes must share it) when set, else from DATA_DIR/master.key, created with
// mode 0600 on first use.
func LoadMasterKey(dataDir, env string) ([]byte, error) {
	if env != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env))
		if err != nil || len(k) != 32 {
			return nil, errors.New("keys: AVOUCH_MASTER_KEY must be 32 bytes in base64")
		}
		return k, nil
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	if data, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("keys: %s is not a base64 32-byte key", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadMasterKey(dataDir, "") // another process created it first
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}
