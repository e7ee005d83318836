package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// APITokenPrefix marks API tokens in the settings table: "apitoken.<id>"
// holds the token's name and the SHA-256 of its secret, never the secret.
const APITokenPrefix = "apitoken."

// tokenScheme starts every API token: avouch_<id>.<secret>.
const tokenScheme = "avouch_"

// APIToken describes a stored API token (without its secret).
type APIToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Hash    string    `json:"-"` // hex SHA-256 of the secret
}

type storedToken struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	SHA256  string    `json:"sha256"`
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$`)

// ErrBadToken is returned for a malformed, unknown or wrong API token.
var ErrBadToken = errors.New("console: invalid API token")

// CreateAPIToken stores a new admin API token named name and returns the
// token, which is shown once: only its hash is kept.
func CreateAPIToken(ctx context.Context, st storage.Settings, name string, now time.Time) (string, APIToken, error) {
	if !tokenNameRE.MatchString(name) {
		return "", APIToken{}, &FieldError{Field: "name", Msg: "1-64 letters, digits, spaces, '.', '_', '@' or '-'"}
	}
	var idb [6]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", APIToken{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", APIToken{}, err
	}
	id := hex.EncodeToString(idb[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(sec))
	rec := storedToken{Name: name, Created: now.UTC().Truncate(time.Second), SHA256: hex.EncodeToString(sum[:])}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", APIToken{}, err
	}
	if err := st.PutSetting(ctx, APITokenPrefix+id, string(data)); err != nil {
		return "", APIToken{}, err
	}
	return tokenScheme + id + "." + sec, APIToken{ID: id, Name: name, Created: rec.Created, Hash: rec.SHA256}, nil
}

// VerifyAPIToken checks a presented token against its stored hash.
func VerifyAPIToken(ctx context.Context, st storage.Settings, token string) (APIToken, error) {
	rest, ok := strings.CutPrefix(token, tokenScheme)
	if !ok {
		return APIToken{}, ErrBadToken
	}
	id, sec, ok := strings.Cut(rest, ".")
	if !ok || len(id) != 12 || sec == "" {
		return APIToken{}, ErrBadToken
	}
	if _, err := hex.DecodeString(id); err != nil {
		return APIToken{}, ErrBadToken
	}
	v, err := st.GetSetting(ctx, APITokenPrefix+id)
	if errors.Is(err, storage.ErrNotFound) {
		return APIToken{}, ErrBadToken
	} else if err != nil {
		return APIToken{}, err
	}
	var rec storedToken
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return APIToken{}, fmt.Errorf("API token %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(sec))
	want, err := hex.DecodeString(rec.SHA256)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return APIToken{}, ErrBadToken
	}
	return APIToken{ID: id, Name: rec.Name, Created: rec.Created, Hash: rec.SHA256}, nil
}

// ListAPITokens returns the stored tokens by creation time.
func ListAPITokens(ctx context.Context, st storage.Settings) ([]APIToken, error) {
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	out := []APIToken{}
	for k, v := range all {
		id, ok := strings.CutPrefix(k, APITokenPrefix)
		if !ok {
			continue
		}
		var rec storedToken
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			continue
		}
		out = append(out, APIToken{ID: id, Name: rec.Name, Created: rec.Created, Hash: rec.SHA256})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeAPIToken deletes a token (storage.ErrNotFound when there is none).
func RevokeAPIToken(ctx context.Context, st storage.Settings, id string) error {
	return st.DeleteSetting(ctx, APITokenPrefix+id)
}
