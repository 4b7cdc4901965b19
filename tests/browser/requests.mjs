// A data-subject request from the preference page in a real browser
// (headless Chromium), in Chinese and in English: the page shows the
// person's suppression for what it is and a receipt download under their
// choice; they ask for erasure, confirm it, and (the policy holds erasures
// for staff approval) get the "we received your request" page with its
// due date. axe-core checks each page, 0 violations wanted.
// Inputs (set by tests/integration/test_browser.py):
//   CONSENTD_API        https://127.0.0.1:PORT
//   CONSENTD_TOKENS     JSON {"zh": token, "en": token}: manage links read from the mail
//   CONSENTD_ARTIFACTS  where screenshots go
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const api = env('CONSENTD_API');
const tokens = JSON.parse(env('CONSENTD_TOKENS'));
const artifacts = env('CONSENTD_ARTIFACTS');
mkdirSync(artifacts, { recursive: true });
const result = { axe: {}, blocks: {}, receipt: {}, received: {}, due: {} };

async function axe(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const v = r.violations.map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  result.axe[name] = v.length;
  if (v.length) throw new Error(`axe on ${name}: ${v.join('; ')}`);
}

async function walk(locale, tag) {
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
    const token = tokens[tag];
    await page.goto(`${api}/p/${token}`);
    await axe(page, `centre-blocks-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-blocks-${tag}.png`), fullPage: true });
    result.blocks[tag] = (await page.locator('#blocks li').first().innerText()).trim();
    const [download] = await Promise.all([page.waitForEvent('download'),
      page.getByRole('button', { name: /Download the receipt|下载同意凭证/ }).first().click()]);
    const receipt = JSON.parse(readFileSync(await download.path(), 'utf8'));
    result.receipt[tag] = [receipt.version, receipt.language];
    await page.goto(`${api}/p/${token}`);
    await Promise.all([page.waitForNavigation(),
      page.getByRole('button', { name: /Ask for erasure|申请删除/ }).click()]);
    await axe(page, `erase-confirm-${tag}`);
    await page.getByRole('checkbox').check();
    await Promise.all([page.waitForNavigation(),
      page.getByRole('button', { name: /Erase my data now|立即删除我的数据/ }).click()]);
    await axe(page, `erase-received-${tag}`);
    await page.screenshot({ path: join(artifacts, `customer-erase-received-${tag}.png`), fullPage: true });
    result.received[tag] = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
    result.due[tag] = await page.locator('time').first().getAttribute('datetime');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

await walk('zh-CN', 'zh');
await walk('en-GB', 'en');
result.ok = true;
console.log(JSON.stringify(result));
