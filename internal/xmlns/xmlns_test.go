package xmlns

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The namespace stack switches from scanning to a map past stackSmall
// bindings; both modes must answer like a plain innermost-first scan.
func TestNSStackMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var s Stack
		var ref []nsBinding
		var marks []int
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op < 5:
				p := "p" + strconv.Itoa(rng.IntN(12))
				u := "u" + strconv.Itoa(step)
				if len(marks) == 0 {
					marks = append(marks, s.Mark())
				}
				s.Push(p, u)
				ref = append(ref, nsBinding{prefix: p, uri: u})
			case op < 7:
				marks = append(marks, s.Mark())
			case len(marks) > 0:
				m := marks[len(marks)-1]
				marks = marks[:len(marks)-1]
				s.PopTo(m)
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
				if got, ok := s.Lookup(p); got != want || ok != wantOK {
					t.Fatalf("round %d step %d: lookup(%s) = %q %v, want %q %v", round, step, p, got, ok, want, wantOK)
				}
			}
		}
	}
}
