// Package psha1 computes the WS-Trust "computed key"
// http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1 (and its
// WS-Trust Feb 2005 twin http://schemas.xmlsoap.org/ws/2005/02/trust/CK/PSHA1).
//
// WS-Trust 1.3 §4.4.4 ("Returning Computed Keys") defines it as:
//
//	The key is computed using P_SHA1 from the TLS specification to generate
//	a bit stream using entropy from both sides. The exact form is:
//
//	    key = P_SHA1 (EntREQ, EntRES)
//
// where EntREQ is the requestor's (client's) entropy and EntRES the issuer's
// (server's). TLS 1.0 (RFC 2246 §5) defines P_hash(secret, seed), so the
// first argument is the HMAC secret and the second the seed:
//
//	P_SHA1(secret, seed) = HMAC_SHA1(secret, A(1) + seed) +
//	                       HMAC_SHA1(secret, A(2) + seed) + ...
//	A(0) = seed, A(i) = HMAC_SHA1(secret, A(i-1))
//
// i.e. the HMAC key is the CLIENT entropy and the seed the SERVER entropy.
// This is also what WCF/ADFS compute (the published vectors in the tests
// were checked against them by their authors).
package psha1

import (
	"crypto/hmac"
	"crypto/sha1"
	"errors"
)

// Bounds on the key size in bits accepted by Key.
const (
	MinBits = 128
	MaxBits = 512
)

// MaxEntropy bounds each entropy input, in bytes. Real entropy is 16 to 64
// bytes; the bound only keeps a hostile request from making us HMAC
// megabytes.
const MaxEntropy = 1024

var (
	// ErrBits reports a key size outside MinBits..MaxBits or not a multiple
	// of 8.
	ErrBits = errors.New("psha1: key size must be a multiple of 8 between 128 and 512 bits")
	// ErrEntropy reports missing or oversized entropy.
	ErrEntropy = errors.New("psha1: client and server entropy must each be 1 to 1024 bytes")
)

// Key returns the first bits/8 bytes of P_SHA1(clientEntropy, serverEntropy):
// clientEntropy (the wst:Entropy of the RST, EntREQ) is the HMAC-SHA1 secret
// and serverEntropy (the wst:Entropy of the RSTR, EntRES) the seed.
func Key(clientEntropy, serverEntropy []byte, bits int) ([]byte, error) {
	if bits < MinBits || bits > MaxBits || bits%8 != 0 {
		return nil, ErrBits
	}
	if len(clientEntropy) == 0 || len(clientEntropy) > MaxEntropy ||
		len(serverEntropy) == 0 || len(serverEntropy) > MaxEntropy {
		return nil, ErrEntropy
	}
	n := bits / 8
	out := make([]byte, 0, n+sha1.Size)
	mac := hmac.New(sha1.New, clientEntropy)
	a := serverEntropy // A(0)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil) // A(i)
		mac.Reset()
		mac.Write(a)
		mac.Write(serverEntropy)
		out = mac.Sum(out)
	}
	return out[:n:n], nil
}
