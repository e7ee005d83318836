package safexml

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The namespace stack switches from scanning to a map past nsStackSmall
// bindings; both modes must answer like a plain innermost-first scan.
func TestNSStackMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var s nsStack
		var ref []nsBinding
		var marks []int
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op < 5:
				p := "p" + strconv.Itoa(rng.IntN(12))
				u := "u" + strconv.Itoa(step)
				if len(marks) == 0 {
					marks = append(marks, s.mark())
				}
				s.push(p, u)
				ref = append(ref, nsBinding{prefix: p, uri: u})
			case op < 7:
				marks = append(marks, s.mark())
			case len(marks) > 0:
				m := marks[len(marks)-1]
				marks = marks[:len(marks)-1]
				s.popTo(m)
				ref = ref[:m]
			}
			for k := range 12 {
				p := "p" + strconv.Itoa(k)
				want, wantOK := "", false
				for i := len(ref) - 1; i >= 0; i-- {
					if ref[i].prefix == p {
						want, wantOK = ref[i].uri, true
						break
					}
				}
				if got, ok := s.lookup(p); got != want || ok != wantOK {
					t.Fatalf("round %d step %d: lookup(%s) = %q %v, want %q %v", round, step, p, got, ok, want, wantOK)
				}
			}
		}
	}
}

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
