package registry

import (
	"fmt"

	"github.com/avouch/avouch/internal/xmlenc"
)

// EncryptionOptions maps an RP's short algorithm names to XML-Enc options.
// Defaults: AES-256-CBC with RSA-OAEP-MGF1P (SHA-1), which .NET and xmlsec1
// accept. RSA PKCS#1 v1.5 key transport is not offered at all.
func (t *Token) EncryptionOptions() (xmlenc.Options, error) {
	var o xmlenc.Options
	switch t.DataEncryption {
	case "", "aes256-cbc":
		o.DataAlgorithm = xmlenc.AlgAES256CBC
	case "aes128-cbc":
		o.DataAlgorithm = xmlenc.AlgAES128CBC
	case "aes192-cbc":
		o.DataAlgorithm = xmlenc.AlgAES192CBC
	case "aes128-gcm":
		o.DataAlgorithm = xmlenc.AlgAES128GCM
	case "aes192-gcm":
		o.DataAlgorithm = xmlenc.AlgAES192GCM
	case "aes256-gcm":
		o.DataAlgorithm = xmlenc.AlgAES256GCM
	default:
		return o, &FieldError{"data_encryption", fmt.Sprintf("%q: use aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm, aes192-gcm or aes256-gcm", t.DataEncryption)}
	}
	switch t.KeyTransport {
	case "", "rsa-oaep-mgf1p":
		o.KeyTransport = xmlenc.AlgRSAOAEPMGF1P
	case "rsa-oaep-sha256", "rsa-oaep":
		o.KeyTransport, o.OAEPDigest = xmlenc.AlgRSAOAEP, xmlenc.DigestSHA256
	case "rsa-oaep-sha1":
		o.KeyTransport, o.OAEPDigest = xmlenc.AlgRSAOAEP, xmlenc.DigestSHA1
	default:
		return o, &FieldError{"key_transport", fmt.Sprintf("%q: use rsa-oaep-mgf1p, rsa-oaep-sha256 or rsa-oaep-sha1", t.KeyTransport)}
	}
	return o, nil
}
