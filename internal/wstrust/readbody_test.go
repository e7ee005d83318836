package wstrust

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// readBody sizes its buffer from Content-Length, which the client chooses:
// a wrong or missing length must still give the whole body, and the byte
// limit must hold whatever length is declared.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 5000)
	tests := []struct {
		name     string
		declared int64
		max      int64
		wantErr  bool
	}{
		{"right length", 5000, 1 << 20, false},
		{"no length (chunked)", -1, 1 << 20, false},
		{"length too small", 10, 1 << 20, false},
		{"length too large", 9000, 1 << 20, false},
		{"declared beyond the limit", 1 << 30, 1 << 20, false},
		{"body beyond the limit", 5000, 4096, true},
		{"body beyond the limit, length understated", 100, 4096, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(body)), tc.max)
			got, err := readBody(r, tc.declared, tc.max)
			var mbe *http.MaxBytesError
			if tc.wantErr {
				if !errors.As(err, &mbe) {
					t.Fatalf("err = %v, want a MaxBytesError", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Fatalf("readBody = %d bytes, %v; want the %d-byte body", len(got), err, len(body))
			}
		})
	}
}
