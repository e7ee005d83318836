// passport_check.js — runs passport-wsfed-saml2 (a WS-Federation relying
// party library nobody on the avouch team wrote) over wresults avouch
// produced, exactly as an Express app would on its wsignin1.0 callback.
//
// Input (stdin, JSON): [{name, wresult, wctx, realm, cert | thumbprint}, …]
//   cert: the STS signing certificate, base64 DER; thumbprint: its SHA-1 hex.
// Output (stdout, JSON): [{name, ok, error, profile}, …] in the same order.
// The Go test (test/browser/passport_test.go) decides what must pass.
'use strict';

const { Strategy } = require('passport-wsfed-saml2');

function check(c) {
  return new Promise((resolve) => {
    const done = (ok, extra) => resolve(Object.assign({ name: c.name, ok }, extra));
    const options = {
      protocol: 'wsfed',
      realm: c.realm,
      identityProviderUrl: 'http://127.0.0.1/passivests',
    };
    if (c.cert) options.cert = c.cert;
    if (c.thumbprint) options.thumbprint = c.thumbprint;
    let strategy;
    try {
      strategy = new Strategy(options, (profile, verified) => verified(null, profile));
    } catch (e) {
      return done(false, { error: 'setup: ' + e.message });
    }
    // passport installs these on each request; the library calls exactly one.
    strategy.success = (user) => done(true, { profile: user });
    strategy.fail = (err) => done(false, { error: String((err && err.message) || err) });
    strategy.error = (err) => done(false, { error: String((err && err.message) || err) });
    strategy.redirect = (url) => done(false, { error: 'unexpected redirect to ' + url });
    // The POST avouch's auto-submit form makes to the relying party.
    const req = {
      method: 'POST',
      body: { wa: 'wsignin1.0', wresult: c.wresult, wctx: c.wctx },
      query: {},
      headers: { host: '127.0.0.1' },
      protocol: 'http',
      originalUrl: '/callback',
      get: (h) => (h.toLowerCase() === 'host' ? '127.0.0.1' : undefined),
    };
    try {
      strategy.authenticate(req, {});
    } catch (e) {
      done(false, { error: 'threw: ' + e.message });
    }
  });
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const cases = JSON.parse(input);
  const out = [];
  for (const c of cases) out.push(await check(c));
  process.stdout.write(JSON.stringify(out));
});
