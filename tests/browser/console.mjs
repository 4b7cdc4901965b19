// An auditor uses the console in a real browser (headless Chromium): signs
// in with a token, searches the trail by email, opens the person's access
// report, downloads an evidence pack, and signs out; axe-core checks every
// page in English and Chinese. Then a second auditor's session is shown to
// die once its token is revoked, and a marketing token is refused at the
// sign-in. Inputs come from the environment (set by
// tests/integration/test_console_browser.py):
//   CONSENTD_API         https://127.0.0.1:PORT
//   CONSENTD_TOKEN       an auditor token
//   CONSENTD_TOKEN2      a second auditor token (revoked during the run)
//   CONSENTD_MARKETING   a marketing token
//   CONSENTD_EMAIL       an email address of a contact
//   CONSENTD_CONTACT     that contact's id
//   CONSENTD_REVOKE      a file: the script writes "revoke" to it and waits
//                        for "revoked" (the Python side runs the CLI)
//   CONSENTD_ARTIFACTS   where screenshots and the downloaded pack go
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const artifacts = env('CONSENTD_ARTIFACTS');
mkdirSync(artifacts, { recursive: true });
const result = { axe: {}, urls: [] };
let expect401 = false;

async function launch(locale) {
  const profile = mkdtempSync(join(tmpdir(), 'consentd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CONSENTD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    locale,
    viewport: { width: 1280, height: 900 },
  });
  return { context, profile };
}

// axe-core runs through the DevTools protocol, not a <script>: the page's
// CSP (no script at all) stays in force for the page itself.
async function axe(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const v = r.violations.map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  result.axe[name] = v.length;
  if (v.length) throw new Error(`axe on ${name}: ${v.join('; ')}`);
}

function watch(page, errors) {
  page.on('pageerror', (e) => errors.push(String(e)));
  // Failed loads are judged by their responses below (the signed-out 401
  // is expected; Chromium's own favicon probe is not the console's).
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.on('request', (r) => result.urls.push(r.url()));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400 && u.pathname !== '/favicon.ico' && !(r.status() === 401 && expect401)) {
      errors.push(`${r.status()} ${u.pathname}`);
    }
  });
}

async function signIn(page, token) {
  await page.goto(`${api}/console/`);
  await page.getByLabel(/API token|API 令牌/).fill(token);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /^(Sign in|登录)$/ }).click()]);
}

async function walk(locale, tag, shots) {
  const { context, profile } = await launch(locale);
  const errors = [];
  try {
    const page = await context.newPage();
    watch(page, errors);
    await page.goto(`${api}/console/`);
    await axe(page, `signin-${tag}`);
    if (shots) await page.screenshot({ path: join(artifacts, `console-signin-${tag}.png`) });
    await signIn(page, env('CONSENTD_TOKEN'));
    if (!(await page.getByRole('heading', { level: 1 }).innerText()).match(/Trail health|审计日志状态/)) {
      throw new Error(`not signed in: ${await page.content()}`);
    }
    await axe(page, `health-${tag}`);
    if (shots) await page.screenshot({ path: join(artifacts, `console-health-${tag}.png`), fullPage: true });

    // Search by email: the form POSTs, the address never reaches a URL.
    await page.getByRole('link', { name: /^(Search the trail|搜索审计日志)$/ }).click();
    await axe(page, `search-${tag}`);
    await page.getByLabel(/or email address|或电子邮件地址/).fill(env('CONSENTD_EMAIL'));
    await Promise.all([page.waitForURL(/contact=/), page.getByRole('button', { name: /^(Search|搜索)$/ }).click()]);
    if (!page.url().includes(`contact=${env('CONSENTD_CONTACT')}`)) throw new Error(`search went to ${page.url()}`);
    await axe(page, `results-${tag}`);
    if (shots) await page.screenshot({ path: join(artifacts, `console-search-${tag}.png`), fullPage: true });

    // One entry and its hash link.
    await page.locator('table.entries tbody a').first().click();
    await axe(page, `entry-${tag}`);
    await page.goBack();

    // The person's access report.
    await page.getByRole('link', { name: /Access report for this contact|此联系人的访问报告/ }).click();
    await axe(page, `report-${tag}`);
    const report = await page.locator('table.entries').first().innerText();
    if (!/contacts\.read/.test(report)) throw new Error(`report without the read: ${report}`);
    if (shots) await page.screenshot({ path: join(artifacts, `console-report-${tag}.png`), fullPage: true });

    await page.getByRole('link', { name: /^(Campaigns|营销活动)$/ }).click();
    await axe(page, `campaigns-${tag}`);

    // The evidence pack, from the health page.
    await page.getByRole('link', { name: /^(Trail health|审计日志状态)$/ }).click();
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: /evidence pack|下载证据包/ }).click(),
    ]);
    const pack = join(artifacts, `evidence-${tag}.tar`);
    await dl.saveAs(pack);
    result[`pack_${tag}`] = pack;

    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /^(Sign out|退出登录)$/ }).click()]);
    expect401 = true;
    const after = await page.goto(`${api}/console/search`);
    if (after.status() !== 401) throw new Error(`signed-out search answered ${after.status()}`);
    await axe(page, `signed-out-${tag}`);
    expect401 = false;
    if (errors.length) throw new Error(`console errors: ${errors.join('; ')}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function revocation() {
  const { context, profile } = await launch('en');
  try {
    const page = await context.newPage();
    await signIn(page, env('CONSENTD_TOKEN2'));
    const ok = await page.goto(`${api}/console/search`);
    if (ok.status() !== 200) throw new Error(`second auditor: ${ok.status()}`);
    const flag = env('CONSENTD_REVOKE');
    writeFileSync(flag, 'revoke');
    for (let i = 0; i < 100 && readFileSync(flag, 'utf8') !== 'revoked'; i++) await page.waitForTimeout(100);
    let status = 200;
    for (let i = 0; i < 30 && status === 200; i++) {
      status = (await page.goto(`${api}/console/search`)).status();
      if (status === 200) await page.waitForTimeout(500);
    }
    result.revoked_status = status;
    if (status !== 401) throw new Error(`the revoked token's session still works: ${status}`);

    // A marketing token cannot sign in.
    await signIn(page, env('CONSENTD_MARKETING'));
    result.marketing_alert = (await page.getByRole('alert').innerText()).trim();
    const cookies = await context.cookies();
    if (cookies.some((c) => c.name === 'consentd_console')) throw new Error('marketing got a session');
    if (!/may not read the audit trail/.test(result.marketing_alert)) throw new Error(result.marketing_alert);
    await axe(page, 'refused-en');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

await walk('en-GB', 'en', true);
await walk('zh-CN', 'zh', true);
await revocation();
const email = env('CONSENTD_EMAIL').toLowerCase();
if (result.urls.some((u) => decodeURIComponent(u).toLowerCase().includes(email))) {
  throw new Error('an email address was in a URL');
}
result.requests = result.urls.length;
delete result.urls;
result.ok = true;
console.log(JSON.stringify(result));
