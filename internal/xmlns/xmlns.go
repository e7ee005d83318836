// Package xmlns keeps the XML namespace declarations in scope while a
// document is walked: the parser (safexml) and the canonicaliser (xmlsec)
// share it.
package xmlns

// nsBinding binds prefix to uri; prev is the index of the binding of the
// same prefix it shadows, or -1.
type nsBinding struct {
	prefix, uri string
	prev        int
}

// Stack holds the namespace declarations in scope, innermost last. Lookup
// scans the few bindings of ordinary documents and switches to a map past
// stackSmall bindings, so a hostile document with thousands of
// declarations in scope costs O(1) per lookup, not O(declarations).
type Stack struct {
	b   []nsBinding
	top map[string]int // prefix -> index in b of its innermost binding
}

const stackSmall = 16

func (s *Stack) index(prefix string) int {
	if s.top != nil {
		if i, ok := s.top[prefix]; ok {
			return i
		}
		return -1
	}
	for i := len(s.b) - 1; i >= 0; i-- {
		if s.b[i].prefix == prefix {
			return i
		}
	}
	return -1
}

func (s *Stack) Lookup(prefix string) (string, bool) {
	if i := s.index(prefix); i >= 0 {
		return s.b[i].uri, true
	}
	return "", false
}

func (s *Stack) Push(prefix, uri string) {
	s.b = append(s.b, nsBinding{prefix, uri, s.index(prefix)})
	switch {
	case s.top != nil:
		s.top[prefix] = len(s.b) - 1
	case len(s.b) > stackSmall:
		s.top = make(map[string]int, 2*len(s.b))
		for i, b := range s.b {
			s.top[b.prefix] = i
		}
	}
}

func (s *Stack) Mark() int { return len(s.b) }

// PopTo removes the bindings pushed since mark m.
func (s *Stack) PopTo(m int) {
	if s.top != nil {
		for i := len(s.b) - 1; i >= m; i-- {
			if b := s.b[i]; b.prev < 0 {
				delete(s.top, b.prefix)
			} else {
				s.top[b.prefix] = b.prev
			}
		}
	}
	s.b = s.b[:m]
}
