package xmlsec

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
)

// transform is one ds:Transform of a Reference.
type transform struct {
	alg      string
	prefixes []string // InclusiveNamespaces PrefixList, exc-c14n only
}

// parsedSig is a ds:Signature checked for shape, not yet for trust.
type parsedSig struct {
	sig, signedInfo *etree.Element
	c14nAlg         string
	c14nPrefixes    []string
	sigAlg          string
	refURI          string
	transforms      []transform
	digestAlg       string
	digestValue     []byte
	sigValue        []byte
	certs           [][]byte // DER of KeyInfo/X509Data/X509Certificate
}

func malformedSig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedSignature}, args...)...)
}

// namespaceURI resolves el's namespace from the declarations in the tree.
func namespaceURI(el *etree.Element) string {
	if el.Space == "xml" {
		return nsXML
	}
	return el.NamespaceURI()
}

func is(el *etree.Element, ns, local string) bool {
	return el.Tag == local && namespaceURI(el) == ns
}

// unprefixedAttr returns the value of el's attribute named name without a
// prefix (etree's SelectAttr would also match p:name).
func unprefixedAttr(el *etree.Element, name string) (string, bool) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == name {
			return a.Value, true
		}
	}
	return "", false
}

// children returns el's child elements, refusing non-whitespace text:
// signature structures hold only elements.
func children(el *etree.Element) ([]*etree.Element, error) {
	var out []*etree.Element
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			out = append(out, t)
		case *etree.CharData:
			if strings.Trim(t.Data, " \t\r\n") != "" {
				return nil, malformedSig("unexpected text in %s", el.Tag)
			}
		}
	}
	return out, nil
}

func decodeBase64(el *etree.Element) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, safexml.Text(el))
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, malformedSig("%s is not valid base64", el.Tag)
	}
	return b, nil
}

// inclusivePrefixes reads an optional ec:InclusiveNamespaces child of a
// canonicalization method or transform.
func inclusivePrefixes(method *etree.Element) ([]string, error) {
	kids, err := children(method)
	if err != nil {
		return nil, err
	}
	switch {
	case len(kids) == 0:
		return nil, nil
	case len(kids) > 1 || !is(kids[0], AlgExcC14N, "InclusiveNamespaces"):
		return nil, malformedSig("unexpected element inside %s", method.Tag)
	}
	list, ok := unprefixedAttr(kids[0], "PrefixList")
	if !ok {
		return nil, malformedSig("InclusiveNamespaces without PrefixList")
	}
	return strings.Fields(list), nil
}

func algorithm(el *etree.Element) (string, error) {
	alg, ok := unprefixedAttr(el, "Algorithm")
	if !ok || alg == "" {
		return "", malformedSig("%s without Algorithm", el.Tag)
	}
	return alg, nil
}

// expect checks that kids[i] exists and is ds:local.
func expect(kids []*etree.Element, i int, local string) (*etree.Element, error) {
	if i >= len(kids) || !is(kids[i], NamespaceDSig, local) {
		return nil, malformedSig("expected ds:%s", local)
	}
	return kids[i], nil
}

// parseSignature checks the shape of a ds:Signature element: SignedInfo
// (CanonicalizationMethod, SignatureMethod, exactly one Reference),
// SignatureValue and an optional KeyInfo, nothing else.
func parseSignature(sig *etree.Element) (*parsedSig, error) {
	p := &parsedSig{sig: sig}
	kids, err := children(sig)
	if err != nil {
		return nil, err
	}
	if p.signedInfo, err = expect(kids, 0, "SignedInfo"); err != nil {
		return nil, err
	}
	sv, err := expect(kids, 1, "SignatureValue")
	if err != nil {
		return nil, err
	}
	if p.sigValue, err = decodeBase64(sv); err != nil {
		return nil, err
	}
	rest := kids[2:]
	if len(rest) > 0 && is(rest[0], NamespaceDSig, "KeyInfo") {
		if p.certs, err = keyInfoCerts(rest[0]); err != nil {
			return nil, err
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return nil, malformedSig("unexpected element %s in Signature", rest[0].Tag)
	}

	si, err := children(p.signedInfo)
	if err != nil {
		return nil, err
	}
	cm, err := expect(si, 0, "CanonicalizationMethod")
	if err != nil {
		return nil, err
	}
	if p.c14nAlg, err = algorithm(cm); err != nil {
		return nil, err
	}
	if p.c14nPrefixes, err = inclusivePrefixes(cm); err != nil {
		return nil, err
	}
	sm, err := expect(si, 1, "SignatureMethod")
	if err != nil {
		return nil, err
	}
	if p.sigAlg, err = algorithm(sm); err != nil {
		return nil, err
	}
	if k, _ := children(sm); len(k) > 0 {
		// e.g. HMACOutputLength: nothing we accept takes parameters.
		return nil, malformedSig("unexpected parameters in SignatureMethod")
	}
	ref, err := expect(si, 2, "Reference")
	if err != nil {
		return nil, err
	}
	if len(si) > 3 {
		return nil, malformedSig("SignedInfo must hold exactly one Reference")
	}
	uri, ok := unprefixedAttr(ref, "URI")
	if !ok {
		return nil, malformedSig("Reference without URI")
	}
	p.refURI = uri
	rk, err := children(ref)
	if err != nil {
		return nil, err
	}
	i := 0
	if len(rk) > 0 && is(rk[0], NamespaceDSig, "Transforms") {
		ts, err := children(rk[0])
		if err != nil {
			return nil, err
		}
		for j := range ts {
			t, err := expect(ts, j, "Transform")
			if err != nil {
				return nil, err
			}
			alg, err := algorithm(t)
			if err != nil {
				return nil, err
			}
			tr := transform{alg: alg}
			if alg == AlgExcC14N || alg == AlgExcC14NWithComments {
				if tr.prefixes, err = inclusivePrefixes(t); err != nil {
					return nil, err
				}
			}
			p.transforms = append(p.transforms, tr)
		}
		i = 1
	}
	dm, err := expect(rk, i, "DigestMethod")
	if err != nil {
		return nil, err
	}
	if p.digestAlg, err = algorithm(dm); err != nil {
		return nil, err
	}
	dv, err := expect(rk, i+1, "DigestValue")
	if err != nil {
		return nil, err
	}
	if len(rk) > i+2 {
		return nil, malformedSig("unexpected element in Reference")
	}
	if p.digestValue, err = decodeBase64(dv); err != nil {
		return nil, err
	}
	return p, nil
}

// keyInfoCerts collects the certificates in KeyInfo/X509Data. Other key
// hints (KeyName, X509IssuerSerial, ...) are ignored: the key is always one
// of the caller's trusted certificates.
func keyInfoCerts(ki *etree.Element) ([][]byte, error) {
	var out [][]byte
	for xd := range ki.ChildElementsSeq() {
		if !is(xd, NamespaceDSig, "X509Data") {
			continue
		}
		for c := range xd.ChildElementsSeq() {
			if !is(c, NamespaceDSig, "X509Certificate") {
				continue
			}
			der, err := decodeBase64(c)
			if err != nil {
				return nil, err
			}
			out = append(out, der)
		}
	}
	return out, nil
}

// referenceC14N returns the canonicalization options of a Reference's
// transforms, which must be exactly enveloped-signature then exc-c14n.
// Comments are dropped even for exc-c14n#WithComments: XML-DSig §4.4.3.3
// says the node-sets of URI="" and URI="#id" exclude comments, so there is
// nothing left for the WithComments variant to keep.
func (p *parsedSig) referenceC14N() (C14NOptions, error) {
	ts := p.transforms
	for _, t := range ts {
		switch t.alg {
		case AlgEnveloped, AlgExcC14N, AlgExcC14NWithComments:
		default:
			return C14NOptions{}, fmt.Errorf("%w: transform %q", ErrAlgorithmNotAllowed, t.alg)
		}
	}
	if len(ts) != 2 || ts[0].alg != AlgEnveloped || (ts[1].alg != AlgExcC14N && ts[1].alg != AlgExcC14NWithComments) {
		return C14NOptions{}, malformedSig("transforms must be enveloped-signature then exclusive c14n")
	}
	return C14NOptions{InclusivePrefixes: ts[1].prefixes, Exclude: p.sig}, nil
}

// signedInfoC14N returns the canonical SignedInfo, the bytes signed.
func (p *parsedSig) signedInfoC14N() ([]byte, error) {
	opts := C14NOptions{InclusivePrefixes: p.c14nPrefixes}
	switch p.c14nAlg {
	case AlgExcC14N:
	case AlgExcC14NWithComments:
		// SignedInfo is canonicalized as an element, not via a URI, so its
		// comments are kept here.
		opts.WithComments = true
	default:
		return nil, fmt.Errorf("%w: SignedInfo canonicalization %q", ErrAlgorithmNotAllowed, p.c14nAlg)
	}
	return Canonicalize(p.signedInfo, opts)
}
