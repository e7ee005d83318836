package sqlite

import "testing"

// TestAuditChunks: every batch size is cut into chunks whose sizes come from
// a small fixed set (so their statements are prepared once), that cover the
// batch exactly, in few statements.
func TestAuditChunks(t *testing.T) {
	sizes := map[int]bool{}
	for n := 1; n <= 1000; n++ {
		left, stmts := n, 0
		for left > 0 {
			c := auditChunkFor(left)
			if c < 1 || c > left || c > auditChunk {
				t.Fatalf("batch %d: chunk %d with %d rows left", n, c, left)
			}
			sizes[c] = true
			left -= c
			stmts++
		}
		if want := n/auditChunk + 7; stmts > want {
			t.Fatalf("batch %d took %d statements, want at most %d", n, stmts, want)
		}
	}
	if len(sizes) != 8 {
		t.Fatalf("%d different statement sizes (%v), want 8: 100 and powers of two up to 64", len(sizes), sizes)
	}
}
