// Drives avouch's management console in headless Chromium (driven by
// test/console/console_test.go, which passes everything in the environment):
//
//   phase 1: log in; set the home realm identifier; apply the UsernameToken
//            policy for the admin role; upload the RP certificate; add a
//            service provider with a WS-Trust endpoint, that certificate
//            alias and encryption on; turn the SOAP tracer on.
//   then it prints READY and waits for a line on stdin (the Go test gets a
//   token meanwhile);
//   phase 2: the exchange is on the SOAP tracer page with the password
//            masked.
//
// Every page is saved as a screenshot in SCREENSHOT_DIR.
'use strict';

const { chromium } = require('playwright-core');
const path = require('path');
const readline = require('readline');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error('missing environment variable ' + k);
  return v;
};
const BASE = env('BASE_URL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const RP_CERT_FILE = env('RP_CERT_FILE');
const RP_ENDPOINT = env('RP_ENDPOINT');
const HOME_REALM = env('HOME_REALM');
const SHOTS = env('SCREENSHOT_DIR');
const USER_DATA_DIR = env('USER_DATA_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function step(msg) { process.stdout.write('STEP ' + msg + '\n'); }

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

function waitLine() {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', (l) => { rl.close(); resolve(l); });
  });
}

async function main() {
  const context = await chromium.launchPersistentContext(USER_DATA_DIR, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(15000);
  const violations = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => violations.push('page error: ' + e.message));
  page.on('dialog', (d) => d.accept());
  const shot = async (name) => page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
  const okMessage = async (re) => {
    await page.locator('#msg.ok', { hasText: re }).waitFor();
  };

  try {
    // --- login ---
    step('login');
    await page.goto(BASE + '/console/');
    await page.locator('#f-username').waitFor();
    await shot('01-login');
    await page.fill('#f-username', 'admin');
    await page.fill('#f-password', 'not-the-password');
    await page.click('#submit-sign-in');
    await page.locator('#msg.error', { hasText: /wrong user name or password/ }).waitFor();
    await page.fill('#f-password', ADMIN_PASSWORD);
    await page.click('#submit-sign-in');
    await okMessage(/Welcome, PRIMARY\/admin/);
    const cookies = await context.cookies(BASE);
    check(cookies.length === 1, 'one cookie: ' + JSON.stringify(cookies.map((c) => c.name)));
    const c = cookies[0];
    check(c.name === '__Host-avouch-console' && c.secure && c.httpOnly && c.sameSite === 'Strict' && c.path === '/',
      'the session cookie is __Host-, Secure, HttpOnly, SameSite=Strict: ' + JSON.stringify({ ...c, value: undefined }));
    await shot('02-home');

    // --- Identity Providers › Resident ---
    step('resident identity provider');
    await page.click('#nav a[href="#/idp/resident"]');
    await page.locator('#f-home_realm_identifiers').waitFor();
    await page.fill('#f-session_idle_timeout', 'soon');
    await page.click('#submit-update');
    const fe = page.locator('[data-field="session_idle_timeout"] .fielderror');
    await fe.waitFor();
    check(/not a positive duration/.test(await fe.textContent()), 'the idle timeout field explains the error');
    await shot('03-resident-validation');
    await page.fill('#f-session_idle_timeout', '30m');
    await page.fill('#f-home_realm_identifiers', HOME_REALM);
    await page.click('#submit-update');
    await okMessage(/Resident identity provider saved/);
    check((await page.inputValue('#f-home_realm_identifiers')) === HOME_REALM, 'home realm identifier shown after saving');
    await shot('04-resident');

    // --- Apply Security Policy wizard ---
    step('security policy wizard');
    await page.click('#nav a[href="#/policy"]');
    await page.locator('#enable-yes').waitFor();
    await page.check('#enable-no');
    await page.click('#wizard-next');
    await page.locator('#wizard .msg.error').waitFor();
    await page.check('#enable-yes');
    await page.click('#wizard-next');
    await page.check('#scenario-0');
    check((await page.locator('label[for=scenario-0]').textContent()).includes('UsernameToken'), 'scenario 1 is UsernameToken');
    await shot('05-policy-scenario');
    await page.click('#wizard-next');
    // User store domain: PRIMARY only.
    for (const cb of await page.locator('[data-field=allowed_domains] input').all()) await cb.uncheck();
    await page.check('[data-field=allowed_domains] input[value=PRIMARY]');
    await page.click('#wizard-next');
    // Roles: admin only.
    for (const cb of await page.locator('[data-field=allowed_roles] input').all()) await cb.uncheck();
    await page.click('#wizard-next');
    await page.locator('#wizard .msg.error').waitFor(); // no role chosen
    await page.check('[data-field=allowed_roles] input[value=admin]');
    await page.click('#wizard-next');
    await shot('06-policy-summary');
    await page.click('#wizard-next'); // Finish
    await okMessage(/Security policy applied: UsernameToken for roles admin/);
    await shot('07-policy-applied');

    // --- Trust store upload ---
    step('trust store upload');
    await page.click('#nav a[href="#/keys"]');
    await page.locator('#f-file').waitFor();
    await page.click('#submit-upload');
    await page.locator('[data-field=content] .fielderror').waitFor();
    await page.setInputFiles('#f-file', RP_CERT_FILE);
    await page.fill('#f-alias', 'console-rp');
    await page.click('#submit-upload');
    await okMessage(/Imported console-rp into the trust store/);
    await shot('08-truststore');

    // --- Service Providers › Add, then inbound WS-Trust configuration ---
    step('service provider');
    await page.click('#nav a[href="#/sp/add"]');
    await page.fill('#f-name', 'bad/name');
    await page.click('#submit-register');
    await page.locator('[data-field=name] .fielderror').waitFor();
    await page.fill('#f-name', 'Console RP');
    await page.click('#submit-register');
    await okMessage(/Service provider Console RP registered/);
    await page.locator('#inbound').waitFor();
    check((await page.locator('#wstrust-config summary').textContent()).includes('WS-Trust Security Token Service Configuration'), 'WS-Trust section');
    await page.fill('#f-wstrust_endpoints', RP_ENDPOINT);
    await page.check('#f-wstrust_token_encrypt');
    await page.click('#submit-update');
    const aliasErr = page.locator('[data-field="wstrust.token.cert_alias"] .fielderror');
    await aliasErr.waitFor(); // encryption without a certificate
    await shot('09-sp-validation');
    await page.selectOption('#f-wstrust_token_cert_alias', 'console-rp');
    await page.click('#submit-update');
    await okMessage(/Service provider Console RP updated/);
    await shot('10-sp-edit');
    await page.click('#nav a[href="#/sp/list"]');
    await page.fill('#sp-search', 'console');
    await page.locator('#sp-list >> text=Console RP').waitFor();
    await shot('11-sp-list');

    // --- SOAP tracer on ---
    step('tracer on');
    await page.click('#nav a[href="#/tracer"]');
    await page.click('#tracer-enabled');
    await okMessage(/SOAP tracer on/);

    process.stdout.write('READY\n');
    const line = await waitLine();
    check(line.trim() === 'GO', 'the Go test says GO, not ' + JSON.stringify(line));

    // --- the exchange in the tracer, password masked ---
    step('tracer page');
    await page.click('#tracer-refresh');
    await page.locator('details.exchange').first().waitFor();
    const html = await page.content();
    const text = await page.locator('main').innerText();
    check(!html.includes(ADMIN_PASSWORD) && !text.includes(ADMIN_PASSWORD), 'the password is not on the tracer page');
    check(text.includes('[masked]'), 'the mask is on the tracer page');
    check(text.includes('PRIMARY/admin') || text.includes('admin'), 'the caller is shown');
    check(text.includes(RP_ENDPOINT), 'the AppliesTo address is shown');
    check(text.includes('RequestSecurityTokenResponse'), 'the response is shown');
    await shot('12-tracer');

    // --- other pages ---
    step('users, audit');
    await page.click('#nav a[href="#/users"]');
    await page.fill('#user-search', 'adm');
    await page.locator('#user-list >> text=admin').first().waitFor();
    await shot('13-users');
    await page.click('#nav a[href="#/audit"]');
    await page.locator('#audit-list >> text=service_provider.update').first().waitFor();
    const audit = await page.locator('#audit-list').innerText();
    check(!audit.includes(ADMIN_PASSWORD), 'the audit log holds no password');
    await shot('14-audit');

    check(violations.length === 0, 'no CSP violations or page errors: ' + violations.join('; '));
    process.stdout.write('DONE\n');
  } catch (e) {
    await shot('99-failure').catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
