package ldap

import "testing"

func TestEscapeFilterFollowsRFC4515(t *testing.T) {
	for in, want := range map[string]string{
		"alice":           "alice",
		"*":               `\2a`,
		"alice)(uid=*":    `alice\29\28uid=\2a`,
		`\`:               `\5c`,
		`\2a`:             `\5c2a`,
		"a\x00b":          `a\00b`,
		"tab\there":       `tab\09here`,
		"é":               `\c3\a9`,
		"lee, ann (temp)": `lee, ann \28temp\29`,
		"uid=x,dc=y":      "uid=x,dc=y", // '=' and ',' are plain in a value
	} {
		if got := escapeFilter(in); got != want {
			t.Errorf("escapeFilter(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeDNFollowsRFC4514(t *testing.T) {
	for in, want := range map[string]string{
		"alice":           "alice",
		"lee, ann (temp)": `lee\, ann (temp)`,
		`a+b;c<d>e"f\g`:   `a\+b\;c\<d\>e\"f\\g`,
		"x=y":             `x\=y`,
		" lead":           `\ lead`,
		"trail ":          `trail\ `,
		" ":               `\ `,
		"#hash":           `\#hash`,
		"mid#dle":         "mid#dle",
		"nul\x00":         `nul\00`,
		"é":               "é",
		"*":               "*",
	} {
		if got := escapeDN(in); got != want {
			t.Errorf("escapeDN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFillSubstitutesOnce(t *testing.T) {
	got := fill("(|(member={dn})(memberUid={user}))", "{dn}", "uid=a")
	if want := "(|(member=uid=a)(memberUid={dn}))"; got != want {
		t.Fatalf("fill = %q, want %q (a value must not be substituted again)", got, want)
	}
}

func TestPlausibleName(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "o*brien": true, "lee, ann (temp)": true, "élise": true,
		"": false, "a\x00": false, "a\nb": false, "\xff": false, string(make([]byte, maxNameBytes+1)): false,
	} {
		if got := plausibleName(name); got != want {
			t.Errorf("plausibleName(%q) = %v, want %v", name, got, want)
		}
	}
}
