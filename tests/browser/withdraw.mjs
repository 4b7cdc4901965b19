// A customer opens their preference link in a real browser (headless
// Chromium), withdraws marketing email consent with one click, sees the
// confirmation, and the API then answers the next consent check with
// "withdrawn". Inputs come from the environment (set by
// tests/integration/test_browser.py):
//   CONSENTD_PAGE_URL   the preference link
//   CONSENTD_API        https://127.0.0.1:PORT
//   CONSENTD_TOKEN      a marketing bearer token
//   CONSENTD_CONTACT    the contact id
//   CONSENTD_ARTIFACTS  where screenshots go
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const pageUrl = env('CONSENTD_PAGE_URL');
const api = env('CONSENTD_API');
const token = env('CONSENTD_TOKEN');
const contact = env('CONSENTD_CONTACT');
const artifacts = env('CONSENTD_ARTIFACTS');
mkdirSync(artifacts, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'consentd-chromium-'));
// A fresh --user-data-dir: playwright passes the profile directory itself.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CONSENTD_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true,
  viewport: { width: 900, height: 1200 },
});
const result = {};
try {
  const page = await context.newPage();
  const jsErrors = [];
  page.on('pageerror', (e) => jsErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') jsErrors.push(m.text()); });

  const resp = await page.goto(pageUrl);
  if (resp.status() !== 200) throw new Error(`page status ${resp.status()}`);
  result.title = await page.title();
  await page.screenshot({ path: join(artifacts, 'preference-centre.png'), fullPage: true });

  // The button's accessible name names the purpose and the channel.
  const names = await page.getByRole('button').evaluateAll((bs) => bs.map((b) => b.innerText));
  result.buttons = names.length;
  const withdraw = page.getByRole('button', { name: /^Withdraw\W+Marketing, Email$/ });
  if (await withdraw.count() !== 1) throw new Error('no single "Withdraw: Marketing, Email" button');
  // Keyboard users reach it with Tab like everything else.
  await withdraw.focus();
  await Promise.all([page.waitForURL(/done=saved/), page.keyboard.press('Enter')]);
  const status = page.getByRole('status');
  await status.waitFor();
  result.confirmation = (await status.innerText()).trim();
  if (!/saved/i.test(result.confirmation)) throw new Error(`no confirmation: ${result.confirmation}`);
  result.grantButtonAfter = await page.getByRole('button', { name: /^Agree\W+Marketing, Email$/ }).count();
  await page.screenshot({ path: join(artifacts, 'after-withdraw.png'), fullPage: true });

  // Through the API, as the marketing system would ask before a mailing.
  const check = await context.request.post(`${api}/v1/consent/check`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { contact_id: contact, purpose: 'marketing', channel: 'email' },
  });
  result.check = await check.json();
  if (result.check.allowed !== false || result.check.reason !== 'withdrawn') {
    throw new Error(`withdrawal did not hold: ${JSON.stringify(result.check)}`);
  }
  if (jsErrors.length) throw new Error(`console errors: ${jsErrors.join('; ')}`);
  result.ok = true;
  console.log(JSON.stringify(result));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
