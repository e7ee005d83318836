package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
)

// normalizeRoles returns roles sorted and without duplicates, as
// storage.User documents; never nil.
func normalizeRoles(roles []string) []string {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// encodeRoles and encodeClaims store the collections as JSON in text
// columns, exactly as the SQLite backend does. Not jsonb: it rejects the
// escape \u0000 that JSON allows, and nothing queries inside the values.
func encodeRoles(roles []string) (string, error) {
	b, err := json.Marshal(normalizeRoles(roles))
	if err != nil {
		return "", fmt.Errorf("encode roles: %w", err)
	}
	return string(b), nil
}

func encodeClaims(claims map[string]string) (string, error) {
	if claims == nil {
		claims = map[string]string{}
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}

// decodeRoles and decodeClaims never return nil, so callers can range over
// and add to what they read.
func decodeRoles(s string) ([]string, error) {
	roles := []string{}
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, fmt.Errorf("decode roles: %w", err)
	}
	if roles == nil {
		roles = []string{}
	}
	return roles, nil
}

func decodeClaims(s string) (map[string]string, error) {
	claims := map[string]string{}
	if err := json.Unmarshal([]byte(s), &claims); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	if claims == nil {
		claims = map[string]string{}
	}
	return claims, nil
}
