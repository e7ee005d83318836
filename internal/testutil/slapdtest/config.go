package slapdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initialise builds slapd.d (cn=config) and the mdb database offline with
// slapadd, so no server-side modification (ldapadd/ldapmodify) is needed and
// the first start already serves the fixtures.
func (s *Server) initialise(b tools, opt Options) error {
	confDir := filepath.Join(s.dir, "slapd.d")
	dbDir := filepath.Join(s.dir, "db")
	for _, d := range []string{confDir, dbDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	var tlsFiles *certFiles
	if opt.TLS {
		var err error
		if tlsFiles, err = writeCerts(s.dir); err != nil {
			return fmt.Errorf("generate TLS certificates: %w", err)
		}
		s.CAFile = tlsFiles.ca
	}
	conf := filepath.Join(s.dir, "config.ldif")
	if err := os.WriteFile(conf, []byte(s.configLDIF(b, opt, dbDir, tlsFiles)), 0o600); err != nil {
		return err
	}
	if err := slapadd(b.slapadd, "-n0", "-F", confDir, "-l", conf); err != nil {
		return fmt.Errorf("load cn=config: %w", err)
	}
	suffix := filepath.Join(s.dir, "suffix.ldif")
	if err := os.WriteFile(suffix, []byte(suffixLDIF), 0o600); err != nil {
		return err
	}
	for _, f := range append([]string{suffix}, opt.LDIF...) {
		// -q skips consistency checks that only slow a fresh load down.
		if err := slapadd(b.slapadd, "-q", "-n1", "-F", confDir, "-l", f); err != nil {
			return fmt.Errorf("load %s: %w", f, err)
		}
	}
	return nil
}

func slapadd(bin string, args ...string) error {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapadd %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

const suffixLDIF = `dn: ` + Suffix + `
objectClass: dcObject
objectClass: organization
dc: example
o: avouch test directory
`

// configLDIF is the whole cn=config tree. Access control mirrors a typical
// directory: passwords can only be used to bind, any bound user may read
// everything else, anonymous users see nothing.
func (s *Server) configLDIF(b tools, opt Options, dbDir string, c *certFiles) string {
	var w strings.Builder
	w.WriteString("dn: cn=config\nobjectClass: olcGlobal\ncn: config\n")
	if c != nil {
		fmt.Fprintf(&w, "olcTLSCACertificateFile: %s\nolcTLSCertificateFile: %s\nolcTLSCertificateKeyFile: %s\n",
			c.ca, c.cert, c.key)
	}
	if b.moduleDir != "" {
		fmt.Fprintf(&w, "\ndn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"+
			"olcModulePath: %s\nolcModuleLoad: back_mdb\n", b.moduleDir)
	}
	w.WriteString("\ndn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n")
	for _, schema := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&w, "\ninclude: file://%s\n", filepath.Join(b.schemaDir, schema+".ldif"))
	}
	w.WriteString("\ndn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n" +
		"objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n")
	w.WriteString("\ndn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n" +
		"olcDatabase: {0}config\nolcAccess: {0}to * by * none\n")
	fmt.Fprintf(&w, "\ndn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"+
		"olcDatabase: {1}mdb\nolcSuffix: %s\nolcRootDN: %s\nolcRootPW: %s\nolcDbDirectory: %s\n"+
		"olcDbNoSync: TRUE\n"+
		"olcAccess: {0}to attrs=userPassword by anonymous auth by * none\n"+
		"olcAccess: {1}to * by users read by * none\n",
		Suffix, RootDN, s.RootPW, dbDir)
	if opt.SizeLimit > 0 {
		fmt.Fprintf(&w, "olcSizeLimit: size.soft=%d size.hard=%d size.prtotal=unlimited\n", opt.SizeLimit, opt.SizeLimit)
	}
	return w.String()
}
