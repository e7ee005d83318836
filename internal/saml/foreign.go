package saml

import (
	"bytes"
	"errors"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/xmlsec"
)

// signForeign signs an assertion that embeds XML written elsewhere (a
// holder-of-key KeyInfo from the XML-Enc writer) whose bytes need not be
// canonical. The whole assertion is canonicalised once, and the canonical
// bytes are what is signed and sent, so the invariant holds: what we sign is
// exactly what we send. The signature goes right after the element ending
// with after ("</saml2:Issuer>"), or, when after is empty, last.
func (s *Signer) signForeign(head, tail, _ []byte, id, after string) ([]byte, error) {
	whole := append(append([]byte{}, head...), tail...)
	doc, err := safexml.Parse(whole, safexml.Limits{MaxBytes: 1 << 20, MaxDepth: 64})
	if err != nil {
		return nil, err
	}
	canon, err := xmlsec.Canonicalize(doc.Root(), xmlsec.C14NOptions{})
	if err != nil {
		return nil, err
	}
	var cut int
	if after == "" {
		cut = bytes.LastIndex(canon, []byte("</"))
	} else {
		i := bytes.Index(canon, []byte(after))
		if i < 0 {
			return nil, errors.New("saml: no Issuer in the canonical assertion")
		}
		cut = i + len(after)
	}
	if cut < 0 {
		return nil, errors.New("saml: malformed canonical assertion")
	}
	return s.sign(canon[:cut], canon[cut:], id)
}
