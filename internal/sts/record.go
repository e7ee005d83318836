package sts

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// marshal encodes the record exactly as encoding/json would (the stored
// format is read back with json.Unmarshal, and older rows were written by
// json.Marshal), without reflection: it runs once per issued token, where
// reflection cost about as much as the SQLite insert of the row.
// TestRecordMarshalMatchesEncodingJSON holds the two encodings equal.
func (d *tokenRecord) marshal() ([]byte, error) {
	b := make([]byte, 0, 256+len(d.KeyInfo)*4/3)
	b = append(b, `{"sub":`...)
	b = appendString(b, d.Subject)
	if d.Domain != "" {
		b = append(b, `,"dom":`...)
		b = appendString(b, d.Domain)
	}
	if len(d.Audiences) > 0 {
		b = append(b, `,"aud":`...)
		b = appendStrings(b, d.Audiences)
	}
	var err error
	b = append(b, `,"authn":`...)
	if b, err = appendTime(b, d.AuthnAt); err != nil {
		return nil, err
	}
	if d.AuthnCtx != "" {
		b = append(b, `,"ac":`...)
		b = appendString(b, d.AuthnCtx)
	}
	if len(d.Attributes) > 0 {
		b = append(b, `,"attrs":[`...)
		for i, a := range d.Attributes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = appendString(b, a.Name)
			b = append(b, `,"Values":`...)
			b = appendStrings(b, a.Values)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if d.DefaultNS {
		b = append(b, `,"dns":true`...)
	}
	if d.Passive {
		b = append(b, `,"passive":true`...)
	}
	if len(d.KeyInfo) > 0 {
		b = append(b, `,"keyinfo":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.KeyInfo)
		b = append(b, '"')
	}
	if d.Delegate != "" {
		b = append(b, `,"del":`...)
		b = appendString(b, d.Delegate)
	}
	// omitempty does not omit a struct: encoding/json writes a zero
	// DelegatedAt too, and so must we.
	b = append(b, `,"delat":`...)
	if b, err = appendTime(b, d.DelegatedAt); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendStrings appends a JSON array of ss; nil is null, as in encoding/json.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string. Printable ASCII other than the
// characters encoding/json escapes is copied; anything else (controls,
// non-ASCII, invalid UTF-8) is left to encoding/json, so the escaping rules
// are its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends t as time.Time's MarshalJSON does: its text form
// (strict RFC 3339 with nanoseconds), quoted; the same error for times RFC
// 3339 cannot write.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		_, err = t.MarshalJSON()
		return nil, err
	}
	return append(b, '"'), nil
}
