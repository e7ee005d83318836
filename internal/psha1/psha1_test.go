package psha1

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Published vectors from two independent implementations that their authors
// ran against Microsoft STSes (ADFS / Dynamics CRM, and a WCF service). Both
// use the client entropy as the HMAC secret, so a swapped secret and seed
// fails here.
func TestKeyMatchesPublishedVectors(t *testing.T) {
	tests := []struct {
		name, source           string
		client, server, keyB64 string
		bits                   int
	}{
		{
			name:   "node-psha1 vector (tested against ADFS) gives its 256-bit key",
			source: "github.com/leandrob/node-psha1 test/lib.index.js",
			client: "GS5olVevYMI4vW1Df/7FUpHcJJopTszp6sodlK4/rP8=",
			server: "LmF9Mjf9lYMa9YkxZDjaRFe6iMAfReKjzhLHDx376jA=",
			keyB64: "ZMOP1NFa5VKTQ8I2awGXDjzKP+686eujiangAgf5N+Q=",
			bits:   256,
		},
		{
			name:   "18F identity-idp AAMVA vector gives its 256-bit key",
			source: "github.com/18F/identity-idp spec/services/proofing/aamva/hmac_secret_spec.rb",
			client: "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
			server: "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=",
			keyB64: "txJiPvOByVADlND/OgUqlJFKoZlR3GPfxGSWMmrRzEM=",
			bits:   256,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Key(b64(t, tc.client), b64(t, tc.server), tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			if want := b64(t, tc.keyB64); !bytes.Equal(got, want) {
				t.Fatalf("key = %s, want %s (%s)", base64.StdEncoding.EncodeToString(got), tc.keyB64, tc.source)
			}
			// Shorter keys are prefixes of the stream: truncation, not a
			// different derivation.
			short, err := Key(b64(t, tc.client), b64(t, tc.server), 128)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(short, got[:16]) {
				t.Fatalf("128-bit key is not the prefix of the 256-bit key")
			}
		})
	}
}

// The roles of the two entropies are not symmetric: swapping them must give
// another key, or a client and server would silently disagree.
func TestKeySwappedEntropyGivesAnotherKey(t *testing.T) {
	c, s := []byte("client entropy 0123456789abcdef"), []byte("server entropy 0123456789abcdef")
	k1, err1 := Key(c, s, 256)
	k2, err2 := Key(s, c, 256)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if bytes.Equal(k1, k2) {
		t.Fatal("Key(client, server) == Key(server, client)")
	}
}

// An independent computation with Debian's python3 and its hmac module must
// give the same bytes for random inputs of every shape: entropy shorter and
// longer than the SHA-1 block, keys of one, two and several HMAC blocks.
func TestKeyMatchesPythonHMAC(t *testing.T) {
	py := testutil.PythonModule(t, "hmac")
	rng := rand.New(rand.NewPCG(0x5eed, 0x9a11))
	bitsChoices := []int{128, 256, 512, 160, 192, 200, 320, 504}
	type tcase struct {
		client, server []byte
		bits           int
	}
	var cases []tcase
	var in strings.Builder
	for i := range 20 {
		c := make([]byte, 1+rng.IntN(100))
		s := make([]byte, 1+rng.IntN(100))
		for j := range c {
			c[j] = byte(rng.Uint32())
		}
		for j := range s {
			s[j] = byte(rng.Uint32())
		}
		bits := bitsChoices[i%len(bitsChoices)]
		cases = append(cases, tcase{c, s, bits})
		fmt.Fprintf(&in, "%x %x %d\n", c, s, bits)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "psha1.py"))
	cmd.Stdin = strings.NewReader(in.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 testdata/psha1.py: %v\n%s", err, stderr.String())
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(cases) {
		t.Fatalf("python printed %d keys for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("case %d with %d-byte client and %d-byte server entropy gives the same %d-bit key", i, len(tc.client), len(tc.server), tc.bits), func(t *testing.T) {
			got, err := Key(tc.client, tc.server, tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.bits/8 {
				t.Fatalf("len = %d, want %d", len(got), tc.bits/8)
			}
			if h := hex.EncodeToString(got); h != lines[i] {
				t.Fatalf("go %s\npy %s", h, lines[i])
			}
		})
	}
}

func TestKeyRefuses(t *testing.T) {
	e := []byte("0123456789abcdef")
	tests := []struct {
		name           string
		client, server []byte
		bits           int
		want           error
	}{
		{"a key shorter than 128 bits", e, e, 120, ErrBits},
		{"a key longer than 512 bits", e, e, 520, ErrBits},
		{"a key size that is not whole bytes", e, e, 130, ErrBits},
		{"a zero key size", e, e, 0, ErrBits},
		{"a negative key size", e, e, -256, ErrBits},
		{"missing client entropy", nil, e, 256, ErrEntropy},
		{"missing server entropy", e, []byte{}, 256, ErrEntropy},
		{"oversized client entropy", make([]byte, MaxEntropy+1), e, 256, ErrEntropy},
	}
	for _, tc := range tests {
		t.Run("it refuses "+tc.name, func(t *testing.T) {
			k, err := Key(tc.client, tc.server, tc.bits)
			if err != tc.want || k != nil {
				t.Fatalf("Key = %x, %v; want nil, %v", k, err, tc.want)
			}
		})
	}
	for _, bits := range []int{128, 136, 256, 504, 512} {
		if k, err := Key(e, e, bits); err != nil || len(k) != bits/8 {
			t.Errorf("Key(%d bits) = %d bytes, %v", bits, len(k), err)
		}
	}
}
