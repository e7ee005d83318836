// Package xmltext escapes text and attribute values in Canonical XML form, so
// that XML we write by hand is already canonical and what we sign is what we send.
package xmltext

import "strings"

// EscapeText escapes character data the way Canonical XML does (& < > and
// CR), so text we emit is already in canonical form.
func EscapeText(s string) string {
	if !strings.ContainsAny(s, "&<>\r") {
		return s
	}
	return textEscaper.Replace(s)
}

// EscapeAttr escapes an attribute value the way Canonical XML does (& < " TAB
// LF CR).
func EscapeAttr(s string) string {
	if !strings.ContainsAny(s, "&<\"\t\n\r") {
		return s
	}
	return attrEscaper.Replace(s)
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;", "\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")
)
