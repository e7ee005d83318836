package sts

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"

	"github.com/avouch/avouch/internal/psha1"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/xmlenc"
)

// Proof-of-possession defaults (WS-Trust 1.3 §4.4).
const (
	DefaultKeySize = 256
	MinKeySize     = 128
	MaxKeySize     = 512
)

// proof is the holder-of-key material of one issued token.
type proof struct {
	keyInfo       []byte // ds:KeyInfo for the assertion's SubjectConfirmation
	key           []byte // symmetric proof key the requestor uses
	serverEntropy []byte // returned when the key was computed with client entropy
	computed      bool
	keySize       int
}

// holderOfKey prepares the proof material for a SymmetricKey or PublicKey
// request: a symmetric key is encrypted for the relying party's certificate
// (only the RP and the requestor may know it); a public key is embedded as
// given.
func (s *Service) holderOfKey(ctx context.Context, ts *tokenSettings, req *IssueRequest) (*proof, error) {
	switch req.KeyType {
	case KeySymmetric:
		if !ts.encryptable() {
			return nil, errorf(CodeInvalidRequest, "a SymmetricKey token needs a registered relying party with a certificate to encrypt the proof key for")
		}
		size := req.KeySize
		if size == 0 {
			size = DefaultKeySize
		}
		if size < MinKeySize || size > MaxKeySize || size%8 != 0 {
			return nil, errorf(CodeInvalidRequest, "KeySize must be a multiple of 8 from %d to %d bits", MinKeySize, MaxKeySize)
		}
		p := &proof{keySize: size}
		if len(req.ClientEntropy) > 0 {
			if len(req.ClientEntropy) < MinKeySize/8 || len(req.ClientEntropy) > 1024 {
				return nil, errorf(CodeInvalidRequest, "client Entropy must be 16 to 1024 bytes")
			}
			p.serverEntropy = make([]byte, size/8)
			if _, err := rand.Read(p.serverEntropy); err != nil {
				return nil, &Error{Code: CodeInternal, Msg: "entropy failed", Err: err}
			}
			k, err := psha1.Key(req.ClientEntropy, p.serverEntropy, size)
			if err != nil {
				return nil, &Error{Code: CodeInvalidRequest, Msg: "cannot compute the proof key", Err: err}
			}
			p.key, p.computed = k, true
		} else {
			p.key = make([]byte, size/8)
			if _, err := rand.Read(p.key); err != nil {
				return nil, &Error{Code: CodeInternal, Msg: "entropy failed", Err: err}
			}
		}
		cert, err := s.trust.Certificate(ctx, ts.certAlias)
		if err != nil {
			return nil, &Error{Code: CodeRequestFailed, Msg: "the relying party's certificate " + ts.certAlias + " is not in the trust store", Err: err}
		}
		ek, err := xmlenc.EncryptKey(p.key, cert, xmlenc.Options{KeyTransport: ts.encryption.KeyTransport, OAEPDigest: ts.encryption.OAEPDigest})
		if err != nil {
			return nil, &Error{Code: CodeInternal, Msg: "proof key encryption failed", Err: err}
		}
		p.keyInfo = append(append([]byte(`<ds:KeyInfo xmlns:ds="`+saml.NSDSig+`">`), ek...), []byte(`</ds:KeyInfo>`)...)
		return p, nil
	case KeyPublic:
		switch {
		case req.UseKeyCert != nil:
			b64 := base64.StdEncoding.EncodeToString(req.UseKeyCert.Raw)
			return &proof{keyInfo: []byte(`<ds:KeyInfo xmlns:ds="` + saml.NSDSig + `"><ds:X509Data><ds:X509Certificate>` + b64 + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo>`)}, nil
		case req.UseKeyRSA != nil:
			mod := base64.StdEncoding.EncodeToString(req.UseKeyRSA.N.Bytes())
			exp := base64.StdEncoding.EncodeToString(big.NewInt(int64(req.UseKeyRSA.E)).Bytes())
			return &proof{keyInfo: []byte(`<ds:KeyInfo xmlns:ds="` + saml.NSDSig + `"><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>` + mod +
				`</ds:Modulus><ds:Exponent>` + exp + `</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo>`)}, nil
		}
		return nil, errorf(CodeInvalidRequest, "a PublicKey request needs UseKey with an X.509 certificate or an RSA KeyValue")
	}
	return nil, nil
}

func (ts *tokenSettings) encryptable() bool { return ts.rpName != "" && ts.certAlias != "" }

// HoK carries the holder-of-key fields of an IssueRequest: client Entropy
// and KeySize (SymmetricKey), UseKey (PublicKey).
type HoK struct {
	ClientEntropy []byte
	KeySize       int
	UseKeyCert    *x509.Certificate
	UseKeyRSA     *rsa.PublicKey
}
