// A person with no link helps themselves in a real browser (headless
// Chromium): asks for a link on /p/request, reads the mail consentd wrote
// (the development mail folder), opens the link, downloads their data,
// withdraws everything through its confirmation page, and asks for erasure
// through its confirmation. axe-core checks every customer page on the way,
// in English and in Chinese. Inputs (set by tests/integration/test_browser.py):
//   CONSENTD_API        https://127.0.0.1:PORT
//   CONSENTD_EMAIL      the address of a contact on file
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
const result = { axe: {} };

async function axe(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const v = r.violations.map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  result.axe[name] = v.length;
  if (v.length) throw new Error(`axe on ${name}: ${v.join('; ')}`);
}

async function mailedLink(seen) {
  const dir = env('CONSENTD_MAILDIR');
  for (let i = 0; i < 200; i++) {
    const names = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.eml') && !seen.has(n)) : [];
    if (names.length) {
      seen.add(names[0]);
      const m = mailText(join(dir, names[0])).match(/\/p\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/);
      if (!m) throw new Error('no link in the mail');
      return m[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no mail arrived');
}

async function walk(locale, tag, seen) {
  const profile = mkdtempSync(join(tmpdir(), 'consentd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CONSENTD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true, acceptDownloads: true, locale, viewport: { width: 1000, height: 900 },
  });
  try {
    const page = await context.newPage();
    await page.goto(`${api}/p/request`);
    await axe(page, `request-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-request-${tag}.png`), fullPage: true });
    await page.getByLabel(/Email address|电子邮件地址/).fill(env('CONSENTD_EMAIL'));
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /Send me a link|给我发送链接/ }).click()]);
    await axe(page, `request-sent-${tag}`);
    const token = await mailedLink(seen);
    await page.goto(`${api}/p/${token}`);
    await axe(page, `centre-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-centre-${tag}.png`), fullPage: true });
    if (tag === 'zh') return;
    const [download] = await Promise.all([page.waitForEvent('download'),
      page.getByRole('button', { name: /Download my data/ }).click()]);
    const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
    result.download_has_email = JSON.stringify(data).includes(env('CONSENTD_EMAIL'));
    // A form value is good once: the page is loaded again for the next form.
    await page.goto(`${api}/p/${token}`);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Withdraw all my consents' }).click()]);
    await axe(page, 'withdraw-all-confirm-en');
    await page.screenshot({ path: join(artifacts, 'customer-withdraw-all-confirm-en.png'), fullPage: true });
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /Yes, withdraw all/ }).click()]);
    await axe(page, 'withdrawn-all-en');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Ask for erasure' }).click()]);
    await axe(page, 'erase-confirm-en');
    await page.getByRole('checkbox').check();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Erase my data now' }).click()]);
    await axe(page, 'erased-en');
    result.erased = /erased/.test(await page.getByRole('heading', { level: 1 }).innerText());
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const seen = new Set();
await walk('zh-CN', 'zh', seen);
await walk('en-GB', 'en', seen);
result.ok = true;
console.log(JSON.stringify(result));
