package safexml

import (
	"strconv"
	"strings"
	"testing"
)

// hostileNamespaces is 1 MiB of elements each using 200 prefixes declared
// on the root: a lookup cost linear in the declarations in scope would make
// this quadratic.
func hostileNamespaces() []byte {
	var b strings.Builder
	b.WriteString("<r")
	for i := range 200 {
		b.WriteString(" xmlns:p" + strconv.Itoa(i) + `="urn:` + strconv.Itoa(i) + `"`)
	}
	b.WriteString(">")
	var e strings.Builder
	e.WriteString("<e")
	for i := range 200 {
		e.WriteString(" p" + strconv.Itoa(i) + `:a=""`)
	}
	e.WriteString("/>")
	for b.Len() < 1<<20-e.Len()-10 {
		b.WriteString(e.String())
	}
	b.WriteString("</r>")
	return []byte(b.String())
}

func BenchmarkParseHostileNamespaces(b *testing.B) {
	data := hostileNamespaces()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}
