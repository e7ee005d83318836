// Package config holds avouch's settings and loads them with the precedence
// flags > environment (AVOUCH_…) > YAML file > defaults. One struct drives all
// four: a field's yaml tag names its YAML key, its flag (--snake-case) and its
// environment variable (AVOUCH_UPPER_SNAKE), and its `help` tag documents it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "5m", "90s" in YAML.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 5m, 90s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is every server setting.
type Config struct {
	DataDir   string `yaml:"data_dir" help:"directory for the database, keys and master key"`
	Listen    string `yaml:"listen" help:"address to listen on"`
	PlainHTTP bool   `yaml:"plain_http" help:"serve plain HTTP instead of HTTPS (tests, TLS-terminating proxies)"`
	PublicURL string `yaml:"public_url" help:"public base URL used in metadata (default: derived from the request)"`
	Database  string `yaml:"database" help:"database URL: empty for SQLite in the data dir, or postgres://…"`

	Issuer              string   `yaml:"issuer" help:"issuer name / home realm identifier written into tokens"`
	TokenLifetime       Duration `yaml:"token_lifetime" help:"default token lifetime"`
	MaxTokenLifetime    Duration `yaml:"max_token_lifetime" help:"longest lifetime a client may request"`
	ClockSkew           Duration `yaml:"clock_skew" help:"tolerated clock difference for Timestamps"`
	MessageMaxAge       Duration `yaml:"message_max_age" help:"freshness window of a Created without Expires"`
	RequireTimestamp    bool     `yaml:"require_timestamp" help:"refuse requests without a wsu:Timestamp"`
	DefaultTokenType    string   `yaml:"default_token_type" help:"saml2.0 or saml1.1 (or a token type URI)"`
	SignatureAlgorithm  string   `yaml:"signature_algorithm" help:"rsa-sha256, rsa-sha512 or rsa-sha1 for RSA keys (an ECDSA key always signs ecdsa-sha256)"`
	SigningKeyAlgorithm string   `yaml:"signing_key_algorithm" help:"algorithm of a generated signing key: rsa-2048 or ecdsa-p256"`
	DigestAlgorithm     string   `yaml:"digest_algorithm" help:"sha256, sha512 or sha1"`
	AllowedRoles        []string `yaml:"allowed_roles" help:"roles allowed to request tokens (comma-separated; * = any user)"`
	AllowedDomains      []string `yaml:"allowed_domains" help:"user-store domains whose users may request tokens (ALL-USER-STORE-DOMAINS or a list)"`
	RefuseUnknownRPs    bool     `yaml:"refuse_unknown_relying_parties" help:"refuse an AppliesTo that matches no registered relying party (default: issue unencrypted with server settings)"`
	SessionIdleTimeout  Duration `yaml:"session_idle_timeout" help:"browser sign-in session idle timeout (resident IdP)"`
	RememberMePeriod    Duration `yaml:"remember_me_period" help:"how long a remember-me browser session lasts (resident IdP)"`
	RenewWindow         Duration `yaml:"renew_window" help:"how long after expiry a token issued renewable-after-expiry (Renewing OK=true) may be renewed"`
	SecurityScenario    string   `yaml:"security_scenario" help:"how WS-Trust callers authenticate: usernametoken, x509 (signed request), mutual-tls, combined with + (usernametoken+x509), alternatives with | (x509|usernametoken)"`
	// ADFSDefaultNamespace: the ADFS-compatible endpoints (/adfs/services/trust/…)
	// write assertions in the default namespace, as ADFS does.
	ADFSDefaultNamespace bool `yaml:"adfs_default_namespace" help:"ADFS endpoints write assertions ADFS-style in the default namespace (<Assertion xmlns=…>)"`

	MaxBodyBytes       int64    `yaml:"max_body_bytes" help:"largest accepted request body"`
	MaxXMLDepth        int      `yaml:"max_xml_depth" help:"deepest accepted XML nesting"`
	LockoutThreshold   int      `yaml:"lockout_threshold" help:"failed logins within lockout_window that lock an account (0 = off)"`
	LockoutWindow      Duration `yaml:"lockout_window" help:"window for counting failed logins"`
	CredentialCacheTTL Duration `yaml:"credential_cache_ttl" help:"how long a verified password is cached (0 = off)"`
	ShutdownTimeout    Duration `yaml:"shutdown_timeout" help:"how long SIGTERM waits for requests in flight"`
	ReadHeaderTimeout  Duration `yaml:"read_header_timeout" help:"how long a client may take to send request headers (slow clients are cut off)"`
	ReadTimeout        Duration `yaml:"read_timeout" help:"how long a client may take to send a whole request"`
	WriteTimeout       Duration `yaml:"write_timeout" help:"how long writing a response may take"`
	IdleTimeout        Duration `yaml:"idle_timeout" help:"how long an idle keep-alive connection stays open"`
	RateLimitPerIP     int      `yaml:"rate_limit_per_ip" help:"requests per second one client address may make to protocol endpoints (0 = off)"`
	RateLimitPerUser   int      `yaml:"rate_limit_per_user" help:"token requests per second one user may make (0 = off)"`
	RateLimitBurst     int      `yaml:"rate_limit_burst" help:"burst above the per-second rates"`
	PprofListen        string   `yaml:"pprof_listen" help:"address for Go's pprof profiles (e.g. 127.0.0.1:6060; empty = off; never expose it)"`
	LogFormat          string   `yaml:"log_format" help:"text or json (default: text on a terminal, json otherwise)"`

	// Fixed names the settings given by flag or environment: they win over
	// settings stored in the database (see Runtime).
	Fixed map[string]bool `yaml:"-"`

	// CheckpointCommand, when set, runs the SQLite database's periodic WAL
	// checkpoints in a child process: the command with the database path
	// appended (sqlite.Store.CheckpointIn). `avouch serve` sets it to its
	// own hidden wal-checkpointer command.
	CheckpointCommand []string `yaml:"-"`
}

// Runtime lists the settings that may also be stored in the database (set
// through `avouch config set` or the admin API) and change while nodes run.
// Precedence: flags > environment > database > YAML file > defaults.
var Runtime = []string{"issuer", "token_lifetime", "max_token_lifetime", "default_token_type",
	"signature_algorithm", "digest_algorithm", "allowed_roles", "allowed_domains", "renew_window", "refuse_unknown_relying_parties", "session_idle_timeout", "remember_me_period", "security_scenario"}

// IsRuntime reports whether key may be stored in the database.
func IsRuntime(key string) bool {
	for _, k := range Runtime {
		if k == key {
			return true
		}
	}
	return false
}

// Set assigns one setting by its YAML key from its string form (as in the
// environment: durations like 5m, lists comma-separated).
func (c *Config) Set(key, value string) error {
	var err error
	found := false
	c.fields(func(k, _ string, v reflect.Value) {
		if k == key {
			found = true
			err = setValue(v, value)
		}
	})
	if !found {
		return fmt.Errorf("unknown setting %q", key)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// Get returns one setting's string form.
func (c *Config) Get(key string) (string, bool) {
	var out string
	found := false
	c.fields(func(k, _ string, v reflect.Value) {
		if k == key {
			found = true
			out = flagValue{v}.String()
		}
	})
	return out, found
}

// WithStored returns a copy of c with the stored runtime settings applied,
// except those fixed by flag or environment; the result is validated.
func (c *Config) WithStored(stored map[string]string) (*Config, error) {
	out := *c
	for _, k := range Runtime {
		v, ok := stored[k]
		if !ok || c.Fixed[k] {
			continue
		}
		if err := out.Set(k, v); err != nil {
			return nil, err
		}
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return &out, nil
}

// Defaults returns the zero-configuration settings.
func Defaults() Config {
	return Config{
		DataDir:             "./avouch-data",
		Listen:              ":9443",
		Issuer:              "avouch",
		TokenLifetime:       Duration(5 * time.Minute),
		MaxTokenLifetime:    Duration(8 * time.Hour),
		ClockSkew:           Duration(5 * time.Minute),
		MessageMaxAge:       Duration(5 * time.Minute),
		DefaultTokenType:    "saml2.0",
		SignatureAlgorithm:  "rsa-sha256",
		SigningKeyAlgorithm: "rsa-2048",
		DigestAlgorithm:     "sha256",
		AllowedRoles:        []string{"admin"},
		RenewWindow:         Duration(30 * time.Minute),
		SecurityScenario:    "usernametoken",
		SessionIdleTimeout:  Duration(15 * time.Minute),
		RememberMePeriod:    Duration(14 * 24 * time.Hour),
		AllowedDomains:      []string{"ALL-USER-STORE-DOMAINS"},
		MaxBodyBytes:        1 << 20,
		MaxXMLDepth:         64,
		LockoutThreshold:    5,
		LockoutWindow:       Duration(15 * time.Minute),
		CredentialCacheTTL:  Duration(60 * time.Second),
		ShutdownTimeout:     Duration(15 * time.Second),
		ReadHeaderTimeout:   Duration(10 * time.Second),
		ReadTimeout:         Duration(30 * time.Second),
		WriteTimeout:        Duration(30 * time.Second),
		IdleTimeout:         Duration(120 * time.Second),
		RateLimitPerIP:      0,
		RateLimitPerUser:    0,
		RateLimitBurst:      50,

		// The ADFS endpoints answer as ADFS does.
		ADFSDefaultNamespace: true,
	}
}

// Validate checks values that would otherwise fail later and obscurely.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	if c.TokenLifetime <= 0 || c.MaxTokenLifetime < c.TokenLifetime {
		errs = append(errs, errors.New("token_lifetime must be positive and at most max_token_lifetime"))
	}
	if c.ClockSkew < 0 || c.MessageMaxAge <= 0 {
		errs = append(errs, errors.New("clock_skew must be ≥ 0 and message_max_age > 0"))
	}
	if _, err := TokenTypeURI(c.DefaultTokenType); err != nil {
		errs = append(errs, err)
	}
	if c.SigningKeyAlgorithm != "rsa-2048" && c.SigningKeyAlgorithm != "ecdsa-p256" {
		errs = append(errs, fmt.Errorf("signing_key_algorithm %q: use rsa-2048 or ecdsa-p256", c.SigningKeyAlgorithm))
	}
	if _, err := SignatureAlgorithmURI(c.SignatureAlgorithm); err != nil {
		errs = append(errs, err)
	}
	if _, err := DigestAlgorithmURI(c.DigestAlgorithm); err != nil {
		errs = append(errs, err)
	}
	if err := validScenario(c.SecurityScenario); err != nil {
		errs = append(errs, err)
	}
	if len(c.AllowedRoles) == 0 {
		errs = append(errs, errors.New("allowed_roles must name at least one role (or *)"))
	}
	if c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 {
		errs = append(errs, errors.New("read_header_timeout, read_timeout, write_timeout and idle_timeout must be positive"))
	}
	if c.MaxBodyBytes < 4096 || c.MaxXMLDepth < 16 {
		errs = append(errs, errors.New("max_body_bytes must be ≥ 4096 and max_xml_depth ≥ 16"))
	}
	return errors.Join(errs...)
}

// TokenTypeURI maps a short name or URI to the canonical token type URI.
func TokenTypeURI(s string) (string, error) {
	switch strings.ToLower(s) {
	case "saml2.0", "saml2", "saml20", "urn:oasis:names:tc:saml:2.0:assertion",
		"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#samlv2.0":
		return "urn:oasis:names:tc:SAML:2.0:assertion", nil
	case "saml1.1", "saml11", "urn:oasis:names:tc:saml:1.0:assertion",
		"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#samlv1.1":
		return "urn:oasis:names:tc:SAML:1.0:assertion", nil
	}
	return "", fmt.Errorf("default_token_type %q: use saml2.0 or saml1.1", s)
}

// SignatureAlgorithmURI maps a short name or URI to the XML-DSig URI.
func SignatureAlgorithmURI(s string) (string, error) {
	for short, uri := range map[string]string{
		"rsa-sha1":     "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
		"rsa-sha256":   "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		"rsa-sha512":   "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
		"ecdsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
	} {
		if s == short || s == uri {
			return uri, nil
		}
	}
	return "", fmt.Errorf("signature_algorithm %q: use rsa-sha256, rsa-sha512, rsa-sha1 or ecdsa-sha256", s)
}

// DigestAlgorithmURI maps a short name or URI to the XML-DSig URI.
func DigestAlgorithmURI(s string) (string, error) {
	for short, uri := range map[string]string{
		"sha1":   "http://www.w3.org/2000/09/xmldsig#sha1",
		"sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
		"sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
	} {
		if s == short || s == uri {
			return uri, nil
		}
	}
	return "", fmt.Errorf("digest_algorithm %q: use sha256, sha512 or sha1", s)
}

// LoadFile merges a YAML file into c. Unknown keys are errors (typos must
// not pass silently).
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// fields walks the settings with their names.
func (c *Config) fields(fn func(key, help string, v reflect.Value)) {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if tag := f.Tag.Get("yaml"); tag != "" && tag != "-" {
			fn(tag, f.Tag.Get("help"), rv.Field(i))
		}
	}
}

// EnvName is the environment variable of a YAML key.
func EnvName(key string) string { return "AVOUCH_" + strings.ToUpper(key) }

// FlagName is the command-line flag of a YAML key.
func FlagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func setValue(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case []string:
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		v.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// LoadEnv applies AVOUCH_… variables.
func (c *Config) LoadEnv(getenv func(string) (string, bool)) error {
	var errs []error
	c.fields(func(key, _ string, v reflect.Value) {
		if s, ok := getenv(EnvName(key)); ok {
			if err := setValue(v, s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvName(key), err))
			}
		}
	})
	return errors.Join(errs...)
}

// flagValue adapts a settings field to flag.Value.
type flagValue struct{ v reflect.Value }

func (f flagValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	if s, ok := f.v.Interface().([]string); ok {
		return strings.Join(s, ",")
	}
	return fmt.Sprint(f.v.Interface())
}
func (f flagValue) Set(s string) error { return setValue(f.v, s) }
func (f flagValue) IsBoolFlag() bool   { _, ok := f.v.Interface().(bool); return ok }

// Load builds the configuration: defaults, then the YAML file (--config or
// AVOUCH_CONFIG), then the environment, then the flags in args.
func Load(fs *flag.FlagSet, args []string, getenv func(string) (string, bool)) (*Config, error) {
	// Parse the flags into a scratch config first, to learn which were set
	// and where the config file is, then layer in precedence order.
	scratch := Defaults()
	var configFile string
	fs.StringVar(&configFile, "config", "", "YAML configuration file (env AVOUCH_CONFIG)")
	scratch.fields(func(key, help string, v reflect.Value) {
		fs.Var(flagValue{v}, FlagName(key), help+" (env "+EnvName(key)+")")
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := Defaults()
	if configFile == "" {
		configFile, _ = getenv("AVOUCH_CONFIG")
	}
	if configFile != "" {
		if err := cfg.LoadFile(configFile); err != nil {
			return nil, err
		}
	}
	if err := cfg.LoadEnv(getenv); err != nil {
		return nil, err
	}
	cfg.Fixed = map[string]bool{}
	src := reflect.ValueOf(&scratch).Elem()
	dst := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < dst.NumField(); i++ {
		key := dst.Type().Field(i).Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		if _, ok := getenv(EnvName(key)); ok {
			cfg.Fixed[key] = true
		}
		if set[FlagName(key)] {
			dst.Field(i).Set(src.Field(i))
			cfg.Fixed[key] = true
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// validScenario checks a security_scenario: alternatives separated by '|'
// or ',', each one or more of usernametoken, x509, mutual-tls joined by '+'
// (internal/wssec.ParsePolicy reads it).
func validScenario(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return nil
	}
	alts := strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' })
	if len(alts) == 0 {
		return fmt.Errorf("security_scenario %q names no method", s)
	}
	for _, alt := range alts {
		seen := map[string]bool{}
		for _, m := range strings.Split(alt, "+") {
			m = strings.TrimSpace(m)
			switch m {
			case "usernametoken", "x509", "mutual-tls":
			default:
				return fmt.Errorf("security_scenario %q: unknown method %q (use usernametoken, x509, mutual-tls; + to combine, | between alternatives)", s, m)
			}
			if seen[m] {
				return fmt.Errorf("security_scenario %q names %s twice in one alternative", s, m)
			}
			seen[m] = true
		}
	}
	return nil
}
