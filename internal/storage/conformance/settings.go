package conformance

import (
	"errors"
	"maps"
	"testing"

	"github.com/avouch/avouch/internal/storage"
)

var settingsTests = []test{
	{"getting a missing setting fails with ErrNotFound", testSettingMissing},
	{"PutSetting stores a value and replaces it on the next put", testSettingPut},
	{"ListSettings returns every setting", testSettingList},
	{"DeleteSetting removes a setting and fails with ErrNotFound when there is none", testSettingDelete},
}

func testSettingMissing(t *testing.T, s storage.Storage) {
	if _, err := s.GetSetting(t.Context(), "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSetting = %v, want ErrNotFound", err)
	}
}

func testSettingPut(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, v := range []string{"first", "sécond — 😀\nline 2", ""} {
		if err := s.PutSetting(ctx, "issuer", v); err != nil {
			t.Fatalf("PutSetting(%q): %v", v, err)
		}
		got, err := s.GetSetting(ctx, "issuer")
		if err != nil || got != v {
			t.Fatalf("GetSetting = %q, %v; want %q", got, err, v)
		}
	}
	// An empty value is a value, not an absent setting.
	if _, err := s.GetSetting(ctx, "Issuer"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSetting(Issuer) = %v, want ErrNotFound (keys are case-sensitive)", err)
	}
}

func testSettingList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	got, err := s.ListSettings(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ListSettings on an empty store = %#v, %v; want empty, non-nil", got, err)
	}
	want := map[string]string{"a": "1", "b": "", "ключ": "значение"}
	for k, v := range want {
		if err := s.PutSetting(ctx, k, v); err != nil {
			t.Fatalf("PutSetting: %v", err)
		}
	}
	if err := s.PutSetting(ctx, "a", "2"); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	want["a"] = "2"
	got, err = s.ListSettings(ctx)
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("ListSettings = %q, %v; want %q", got, err, want)
	}
}

func testSettingDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.PutSetting(ctx, "gone", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSetting(ctx, "gone"); err != nil {
		t.Fatalf("DeleteSetting: %v", err)
	}
	if _, err := s.GetSetting(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSetting after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSetting(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteSetting = %v, want ErrNotFound", err)
	}
}
