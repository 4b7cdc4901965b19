// Double opt-in in a real browser (headless Chromium): the person opens the
// confirmation link from the mail consentd wrote, sees what they are asked
// to confirm, presses the button and gets the "confirmed" page. axe-core
// checks both pages, in Chinese and in English (one contact each).
// Inputs (set by tests/integration/test_browser.py):
//   CONSENTD_API        https://127.0.0.1:PORT
//   CONSENTD_MAILDIR    the data folder's mail-outbox
//   CONSENTD_ARTIFACTS  where screenshots go
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mailText } from './mail.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const api = env('CONSENTD_API');
const artifacts = env('CONSENTD_ARTIFACTS');
mkdirSync(artifacts, { recursive: true });
const result = { axe: {}, confirmed: [] };

async function axe(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const v = r.violations.map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  result.axe[name] = v.length;
  if (v.length) throw new Error(`axe on ${name}: ${v.join('; ')}`);
}

// The confirmation tokens in the folder's mail, oldest first.
function confirmationTokens() {
  const dir = env('CONSENTD_MAILDIR');
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.eml')).sort() : [];
  const out = [];
  for (const n of names) {
    const m = mailText(join(dir, n)).match(/\/p\/confirm\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/);
    if (m) out.push(m[1]);
  }
  return out;
}

async function confirm(locale, tag, token) {
  const profile = mkdtempSync(join(tmpdir(), 'consentd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CONSENTD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true, locale, viewport: { width: 1000, height: 900 },
  });
  try {
    const page = await context.newPage();
    await page.goto(`${api}/p/confirm/${token}`);
    await axe(page, `confirm-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-confirm-${tag}.png`), fullPage: true });
    await Promise.all([page.waitForNavigation(),
      page.getByRole('button', { name: /Yes, send me this by email|是的，请通过电子邮件发送给我/ }).click()]);
    await axe(page, `confirmed-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-confirmed-${tag}.png`), fullPage: true });
    result.confirmed.push((await page.getByRole('heading', { level: 1 }).innerText()).trim());
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

let tokens = [];
for (let i = 0; i < 200 && tokens.length < 2; i++) {
  tokens = confirmationTokens();
  if (tokens.length < 2) await new Promise((r) => setTimeout(r, 50));
}
if (tokens.length < 2) throw new Error(`want two confirmation mails, found ${tokens.length}`);
await confirm('zh-CN', 'zh', tokens[0]);
await confirm('en-GB', 'en', tokens[1]);
result.ok = true;
console.log(JSON.stringify(result));
