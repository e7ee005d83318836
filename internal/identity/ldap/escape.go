package ldap

import (
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// escapeFilter escapes s for use as an assertion value in a search filter
// (RFC 4515 section 3): the metacharacters NUL ( ) * \ must be written as
// \XX, or a name like "*" or "a)(uid=*" would change the filter's meaning.
// Control characters and every non-ASCII byte are escaped as well, which the
// RFC allows for any octet: the filter stays printable ASCII and bytes that
// are not valid UTF-8 cannot confuse the filter parser.
func escapeFilter(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(' || c == ')' || c == '*' || c == '\\' || c < 0x20 || c >= 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeDN escapes s for use as an attribute value in a distinguished name
// (RFC 4514 section 2.4): the specials " + , ; < > \ are backslash-escaped
// everywhere, as are a leading space or '#' and a trailing space; NUL and
// other control characters become \XX. '=' is escaped too (allowed, and it
// keeps lenient parsers from reading a second type=value).
func escapeDN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		case strings.IndexByte(`"+,;<>\=`, c) >= 0,
			c == ' ' && (i == 0 || i == len(s)-1),
			c == '#' && i == 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fill replaces the placeholders of a filter or DN template in one pass, so
// a value that itself contains "{dn}" is not substituted again. Values must
// be escaped by the caller for the template's syntax.
func fill(template, user, dn string) string {
	return strings.NewReplacer(userPlaceholder, user, dnPlaceholder, dn).Replace(template)
}

// plausibleName reports whether name can be a login name at all: non-empty,
// bounded, valid UTF-8, without control characters. Anything else is
// refused before it reaches the directory.
func plausibleName(name string) bool {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
