// Package xmlsec implements the parts of XML Signature (XML-DSig 1.1) that
// avouch needs: Exclusive XML Canonicalization 1.0, verification of one
// enveloped signature over one element, and creation of such signatures.
//
// It is deliberately narrow. A signature is accepted only in the shape SAML,
// WS-Federation metadata and WS-Security use: one ds:Signature child of the
// signed element, one Reference to that element (URI="" or "#ID"), the
// enveloped-signature and exclusive-c14n transforms and nothing else, and a
// key chosen from the caller's trusted certificates. Anything else is
// refused with a typed error rather than interpreted.
//
// Canonical output is checked byte for byte against xmlsec1 (1.2.37, i.e.
// libxml2's exclusive c14n) on the corpus in testdata/c14n; see
// c14n_corpus_test.go. Where implementations are known to disagree we follow
// xmlsec1 and the specs:
//
//   - attributes sort by namespace URI, then local name (so xsi:type comes
//     before xml:lang: "http://www.w3.org/2001/..." < "http://www.w3.org/XML/...");
//   - "#default" in a PrefixList renders the in-scope default namespace;
//   - the PrefixList of SignedInfo's CanonicalizationMethod applies to
//     SignedInfo;
//   - references URI="" and URI="#id" never include comments, even with
//     the #WithComments transform (XML-DSig 1.1 §4.4.3.3), while SignedInfo
//     canonicalized #WithComments keeps its comments;
//   - attribute values are normalized by the parser (safexml.Parse), as
//     libxml2 does: a literal tab or newline in an attribute is a space.
//
// Documents to be signed or verified should be parsed with safexml.Parse.
// When writing a signed etree document out, keep the WriteSettings that
// safexml.Parse sets (CanonicalText, CanonicalAttrVal); etree's defaults
// write CR, and tab or newline in attribute values, literally, and the
// reader would see other characters than were signed.
package xmlsec
