package main

import (
	"strings"
	"testing"
)

func TestAdminTokenCreateListRevoke(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := call(t, runAdmin, "token", "create", "--name", "ci", "--data-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "avouch_") || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	token := strings.TrimSpace(out)
	id := strings.SplitN(strings.TrimPrefix(token, "avouch_"), ".", 2)[0]
	list := mustCall(t, runAdmin, "token", "list", "--data-dir", dir)
	if !strings.Contains(list, id) || !strings.Contains(list, "ci") || strings.Contains(list, token) {
		t.Fatalf("list: %q", list)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"a token name with a slash is refused", []string{"token", "create", "--name", "a/b", "--data-dir", dir}, 2},
		{"an unknown subcommand is a usage error", []string{"token", "rotate", "--data-dir", dir}, 2},
		{"revoke needs an ID", []string{"token", "revoke", "--data-dir", dir}, 2},
		{"revoking an unknown token fails", []string{"token", "revoke", "ffffffffffff", "--data-dir", dir}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, code := call(t, runAdmin, tc.args...); code != tc.code {
				t.Fatalf("exit %d, want %d", code, tc.code)
			}
		})
	}
	mustCall(t, runAdmin, "token", "revoke", id, "--data-dir", dir)
	if list := mustCall(t, runAdmin, "token", "list", "--data-dir", dir); strings.Contains(list, id) {
		t.Fatalf("revoked token still listed: %q", list)
	}
}
