// browser_flow.js — drives Debian's Chromium (through playwright-core) through
// avouch's passive STS the way a person would: relying party → avouch login
// page → auto-POST back → claims; a second relying party by single sign-on;
// sign-out; and the whole sign-in once more with JavaScript turned off.
//
// Input (stdin, JSON): {rp1, rp2, user, password, shots, chromium}
// Output (stdout, JSON): what each page showed, for the Go test
// (test/browser/chromium_test.go) to judge. Screenshots go to `shots`.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];

async function main(cfg) {
  const out = { steps: [], console: [] };
  // launch() gives Chromium a fresh temporary --user-data-dir of its own.
  const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: FLAGS });
  let page;
  const shot = async (name) => {
    await page.screenshot({ path: path.join(cfg.shots, name), fullPage: true });
    out.steps.push(name);
  };
  try {
    const ctx = await browser.newContext();
    ctx.setDefaultTimeout(15000);
    page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });

    // 1. The first relying party sends the browser to avouch, which asks
    //    for a password.
    await page.goto(cfg.rp1 + '/');
    await page.waitForSelector('form[action="/login"]');
    out.loginPage = await page.evaluate(() => ({
      url: location.href,
      lang: document.documentElement.lang,
      focused: document.activeElement ? document.activeElement.id : '',
      labels: [...document.querySelectorAll('input:not([type=hidden]), select')]
        .map((el) => [el.id, !!document.querySelector('label[for="' + el.id + '"]')]),
    }));
    await shot('01-avouch-login.png');
    await page.fill('#username', cfg.user);
    await page.fill('#password', cfg.password);
    await page.click('button[type=submit]');
    await page.waitForURL(cfg.rp1 + '/');
    await page.waitForSelector('#claims');
    out.rp1 = await page.innerText('main');
    await shot('02-rp1-claims.png');

    // 2. The second relying party: single sign-on, nobody types anything.
    //    Were the login page shown, #claims would never appear.
    await page.goto(cfg.rp2 + '/');
    await page.waitForURL(cfg.rp2 + '/');
    await page.waitForSelector('#claims');
    out.rp2 = await page.innerText('main');
    await shot('03-rp2-sso.png');
    out.avouchSession = (await ctx.cookies()).filter((c) => c.name === 'avouch-session').map((c) => c.value)[0] || '';

    // 3. Sign out at the first relying party: avouch's signed-out page calls
    //    both relying parties and, once those calls complete, continues to
    //    the first one's signed-out page. The relying parties hold their
    //    answers until the page has been photographed.
    await page.goto(cfg.rp1 + '/logout', { waitUntil: 'domcontentloaded' });
    out.signOutPage = await page.innerText('main');
    out.signOutURL = page.url();
    await shot('04-avouch-signed-out.png');
    await fetch(cfg.rp1 + '/release-cleanups');
    await page.waitForURL(cfg.rp1 + '/signed-out');
    out.afterSignOutPage = await page.innerText('main');
    await shot('05-rp1-signed-out.png');
    out.cookiesAfterSignOut = (await ctx.cookies()).map((c) => c.name);

    // 4. The second relying party's session went with the front-channel
    //    call, and avouch's too: the password is asked for again.
    await page.goto(cfg.rp2 + '/');
    await page.waitForSelector('form[action="/login"]');
    out.rp2AfterSignOut = 'login page';
    await shot('06-login-again.png');
    await ctx.close();

    // 5. Without JavaScript: the login form is a plain POST and the
    //    auto-POST page shows a Continue button.
    const nojs = await browser.newContext({ javaScriptEnabled: false });
    nojs.setDefaultTimeout(15000);
    page = await nojs.newPage();
    await page.goto(cfg.rp1 + '/');
    await page.waitForSelector('form[action="/login"]');
    await page.fill('#username', cfg.user);
    await page.fill('#password', cfg.password);
    await page.click('button[type=submit]');
    await page.waitForSelector('form#wsfed button[type=submit]');
    await shot('07-nojs-continue.png');
    await page.click('form#wsfed button[type=submit]');
    await page.waitForURL(cfg.rp1 + '/');
    await page.waitForSelector('#claims');
    out.rp1NoJS = await page.innerText('main');
    await shot('08-nojs-rp1-claims.png');
    await nojs.close();
  } catch (e) {
    out.error = e.message;
    if (page) {
      try {
        out.errorURL = page.url();
        out.errorPage = (await page.content()).slice(0, 4000);
        await page.screenshot({ path: path.join(cfg.shots, 'error.png'), fullPage: true });
      } catch (_) { /* the page may be gone */ }
    }
  } finally {
    await browser.close();
  }
  return out;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const cfg = JSON.parse(input);
  fs.mkdirSync(cfg.shots, { recursive: true });
  main(cfg).then(
    (out) => process.stdout.write(JSON.stringify(out)),
    (e) => { process.stdout.write(JSON.stringify({ error: 'fatal: ' + e.message })); },
  );
});
