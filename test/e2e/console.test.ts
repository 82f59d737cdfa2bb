import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { ensureConsoleBuilt } from '../../console/build.js';
import { CONSOLE_CSP } from '../../console/serve.js';
import { CONSOLE_SCOPES, consoleLink } from '../../console/link.js';
import type { GatewayClient } from '../../sdk/client.js';

const DAY = 86_400_000;
const GOV_APP = { appid: 'wx00000000000000c7', secret: 'gov-app-secret-0123456789abcdef', subjectType: 'government' as const };
const SUBJECT = 'o_console_e2e_user';
const TOKEN_KEY = 'wxphone.console.token';

/**
 * The operations console in headless Chromium against a real test gateway and its simulator.
 * The page may reach nothing but the gateway: any other request is refused and recorded, and so
 * is any Content-Security-Policy violation.
 */
describe.skipIf(!chromiumAvailable)('the operations console in a browser', () => {
  let t: TestGateway;
  let browser: Browser;
  let admin: GatewayClient;
  let origin: string;
  let operatorToken: string;
  const phones: string[] = [];
  let freshPack: string;
  let oldPack: string;

  beforeAll(async () => {
    await ensureConsoleBuilt();
    t = await startTestGateway({ backend: BACKENDS[0]!, extraApps: [GOV_APP] });
    origin = new URL(t.url).origin;
    browser = await launchChromium();
    admin = await t.client('svc_ops', { appid: undefined, scopes: ['quota:read', 'billing:admin', 'audit:read'] });
    operatorToken = await t.token('ops-lead', { appid: undefined, scopes: [...CONSOLE_SCOPES], ttl: '30m' });

    // Two packs: one bought a minute ago (refundable), one eight days ago (past the 7-day window).
    const bought = async (paidAt: number) => {
      const r = await admin.RecordPackPurchase({ input: { appid: APP, units: 200, paidAt: new Date(paidAt).toISOString(), validityDays: 365, pricePaidMilli: '6000' } });
      if (r.recordPackPurchase.__typename !== 'Pack') throw new Error('pack not recorded');
      return r.recordPackPurchase.packId;
    };
    freshPack = await bought(Date.now() - 60_000);
    oldPack = await bought(Date.now() - 8 * DAY);

    // A user's exchanges: consent records with masked numbers, for the audit pages.
    const user = await t.client(SUBJECT);
    for (let i = 0; i < 3; i++) {
      const phone = `139${String(Date.now() + i).slice(-8)}`;
      phones.push(phone);
      const r = await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim, phone), purpose: 'login' } });
      expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    }
    // A code exchanged too late: INVALID_CODE, for the exchanges page.
    const late = await mintCode(t.sim);
    await t.sim.advance(301);
    expect((await user.ExchangePhoneCode({ input: { code: late, purpose: 'login' } })).exchangePhoneCode).toMatchObject({ code: 'INVALID_CODE' });
    expect((await admin.SyncUsage({ appid: APP })).syncUsage.__typename).toBe('UsageSynced');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** A page that may talk to the gateway only, recording whatever else it tries and any CSP violation. */
  async function openPage(opts: { width?: number; height?: number } = {}) {
    const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const elsewhere: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[13]/.test(m.text()) && errors.push(m.text()));
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    await context.addInitScript(() => {
      (window as unknown as { cspViolations: string[] }).cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { cspViolations: string[] }).cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const check = async () => {
      expect(elsewhere).toEqual([]);
      expect(errors).toEqual([]);
      expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);
    };
    return { page, context, check, close: () => context.close() };
  }

  async function signInByLink(page: Page, token: string) {
    await page.goto(consoleLink(origin, token));
    await page.waitForSelector('header.top');
  }

  /** Everything the page keeps in browser storage, as text. */
  async function browserStorage(page: Page) {
    return page.evaluate(async () => ({
      local: Object.fromEntries(Object.entries(localStorage)),
      session: Object.fromEntries(Object.entries(sessionStorage)),
      cookies: document.cookie,
      indexedDb: (await indexedDB.databases()).map((d) => d.name),
      caches: await caches.keys(),
    }));
  }

  const digits = (s: string | null) => Number((s ?? '').replace(/[^\d]/g, ''));

  async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    return text;
  }

  it('is served with a strict CSP: the page uncached, the hashed assets cached for good, nothing from elsewhere', async () => {
    const html = await fetch(`${origin}/console`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toMatch(/script-src 'self'(;|$)/);
    expect(CONSOLE_CSP).toMatch(/connect-src 'self'(;|$)/);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(html.headers.get('cache-control')).toBe('no-cache');
    expect(html.headers.get('x-frame-options')).toBe('DENY');
    const text = await html.text();
    expect(text).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son\w+=/i);
    const scripts = [...text.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBe(3);
    for (const path of scripts) {
      const r = await fetch(`${origin}${path}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    expect((await fetch(`${origin}/console/assets/nope-123.js`)).status).toBe(404);
    expect((await fetch(`${origin}/console/../graphql`)).status).not.toBe(500);
  });

  it('signs in from a console link (the token taken out of the address at once), and signing out forgets it', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    expect(page.url()).not.toContain('token=');
    expect(page.url()).toMatch(/#\/(overview)?$/);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    expect(await page.locator('header nav a').allInnerTexts()).toEqual(['应用总览', '对账', '号码兑换', '授权审计']);
    const stored = await browserStorage(page);
    expect(stored.session).toEqual({ [TOKEN_KEY]: operatorToken });
    // A reload keeps the session (this tab's sessionStorage), and lands where it was.
    await page.reload();
    await page.waitForSelector('[data-ready] tr[data-appid]');

    await page.click('[data-action=sign-out]');
    await page.waitForSelector('textarea#token');
    expect((await browserStorage(page)).session).toEqual({});
    await page.reload();
    await page.waitForSelector('textarea#token');
    await check();
    await close();
  });

  it('signs in with a pasted token, and refuses a bad one or one without operator scopes', async () => {
    const { page, check, close } = await openPage();
    await page.goto(`${origin}/console`);
    await page.fill('textarea#token', 'eyJhbGciOiJIUzI1NiJ9.e30.bogus');
    await page.click('form button[type=submit]');
    await page.waitForSelector('[data-problem="signin.refused"]');
    await page.fill('textarea#token', await t.token('o_user', { scopes: ['phone:exchange'] }));
    await page.click('form button[type=submit]');
    await page.waitForSelector('[data-problem="signin.noOperatorScope"]');
    expect((await browserStorage(page)).session).toEqual({});
    await page.fill('textarea#token', `Bearer ${operatorToken}`);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-ready] tr[data-appid]');
    expect((await browserStorage(page)).session).toEqual({ [TOKEN_KEY]: operatorToken });
    await check();
    await close();
  });

  it("shows each app's remaining units exactly as the quota query answers them", async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    const appids = await page.locator('tr[data-appid]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-appid')!));
    expect(appids.sort()).toEqual([APP, OTHER_APP.appid, GOV_APP.appid].sort());
    for (const appid of appids) {
      const q = (await admin.Quota({ appid })).quota;
      const row = page.locator(`tr[data-appid="${appid}"]`);
      expect(digits(await row.locator('[data-col=remaining]').textContent())).toBe(q.remaining);
      expect(digits(await row.locator('[data-col=estimated]').textContent())).toBe(q.estimatedRemaining);
      const daysLeft = await row.locator('[data-col=days-left]').textContent();
      if (q.daysLeft === null) expect(daysLeft).toBe('—');
      else expect(digits(daysLeft)).toBe(q.daysLeft);
    }
    // The exempt app says so, with its rule.
    await expect(page.locator(`tr[data-appid="${GOV_APP.appid}"]`).textContent()).resolves.toContain('政府或非营利组织');
    // Filtering and sorting happen in the page.
    await page.fill('input[type=search]', GOV_APP.appid.slice(-4));
    expect(await page.locator('tr[data-appid]').count()).toBe(1);
    await check();
    await close();
  });

  it('requests a refund after a confirmation, and shows the rule when WeChat\'s rules refuse one', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.goto(`${origin}/console/#/apps/${APP}`);
    await page.waitForSelector(`tr[data-pack="${freshPack}"]`);
    // The figures at the top are the quota query's too.
    const q = (await admin.Quota({ appid: APP })).quota;
    expect(digits(await page.locator('[data-field=remaining] .stat-value').textContent())).toBe(q.remaining);

    // Opened from the keyboard; Escape backs out and nothing is requested.
    await page.locator(`tr[data-pack="${freshPack}"] button`).focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog[open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    expect((await admin.Packs({ appid: APP })).packs.find((p) => p.packId === freshPack)?.refundRequestedAt).toBeNull();

    await page.click(`tr[data-pack="${freshPack}"] button`);
    await page.click('dialog[open] [data-action=confirm]');
    await page.waitForSelector('[data-notice=ok]');
    expect(await page.locator('[data-notice=ok]').textContent()).toContain('已记录');
    await expect.poll(async () => page.locator(`tr[data-pack="${freshPack}"] [data-col=refund]`).textContent()).toContain('已申请退款');
    expect((await admin.Packs({ appid: APP })).packs.find((p) => p.packId === freshPack)?.refundRequestedAt).not.toBeNull();

    // Past the window: the cell says so before asking, the dialog warns, and the refusal names the rule.
    expect(await page.locator(`tr[data-pack="${oldPack}"] [data-col=refund]`).textContent()).toBe('只能在支付后 7 天内退款');
    await page.click(`tr[data-pack="${oldPack}"] button`);
    expect(await page.locator('dialog[open]').textContent()).toContain('预计会被拒绝');
    await page.click('dialog[open] [data-action=confirm]');
    await page.waitForSelector('[data-notice=warn]');
    const refusal = await page.locator('[data-notice=warn]').textContent();
    expect(refusal).toContain('退款被拒绝：只能在支付后 7 天内退款');
    expect(refusal).toContain('REFUND_WINDOW_PASSED');
    await check();
    await close();
  });

  it('verifies the consent chain', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.goto(`${origin}/console/#/audit`);
    await page.click('[data-action=verify]');
    await page.waitForSelector('[data-verify=ok]');
    const r = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` }, body: JSON.stringify({ query: '{ verifyAuditChain { ok checked } }' }) });
    const { data } = (await r.json()) as { data: { verifyAuditChain: { ok: boolean; checked: number } } };
    expect(data.verifyAuditChain.ok).toBe(true);
    expect(await page.locator('[data-verify=ok]').textContent()).toContain(`已校验 ${data.verifyAuditChain.checked.toLocaleString('zh-CN')} 条记录`);
    await check();
    await close();
  });

  it("erases a subject only after a confirmation, and then the subject's records read as erased", async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.goto(`${origin}/console/#/audit`);
    await page.selectOption('#records-app', APP);
    await page.fill('input[name=subject]', SUBJECT);
    await page.click('[data-action=search]');
    await page.waitForSelector('tr[data-record]');
    const rows = page.locator('tr[data-record]');
    // Three disclosures and the refused late code.
    expect(await rows.count()).toBe(4);
    // Masked numbers and hashes as stored: never the number, never the openid.
    const shown = await page.locator('table.records').textContent();
    for (const phone of phones) {
      expect(shown).not.toContain(phone);
      expect(shown).toContain(`${phone.slice(0, 3)}****${phone.slice(-4)}`);
    }
    expect(shown).not.toContain(SUBJECT);

    // Cancelled: nothing happens.
    await page.click('[data-action=erase]');
    await page.waitForSelector('dialog[open]');
    await page.click('dialog[open] button:not([data-action])');
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    expect(await page.locator('tr[data-record][data-erased=false]').count()).toBe(4);

    await page.click('[data-action=erase]');
    expect(await page.locator('dialog[open]').textContent()).toContain('无法撤销');
    await page.click('dialog[open] [data-action=confirm]');
    await page.waitForSelector('[data-notice=erased]');
    expect(await page.locator('[data-notice=erased]').textContent()).toContain('4 条记录');
    expect(await page.locator('tr[data-record][data-erased=true]').count()).toBe(4);
    expect(await page.locator('table.records [data-col=masked]').allTextContents()).toEqual(Array(4).fill(expect.stringContaining('已删除')));
    expect(await page.inputValue('input[name=subject]')).toBe('');
    // The gateway agrees: nothing is found by the subject any more, and the chain still verifies.
    const auditor = await t.client('dpo', { appid: undefined, scopes: ['audit:read'] });
    expect((await auditor.AuditRecords({ appid: APP, subject: SUBJECT })).auditRecords.edges).toEqual([]);
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
    await check();
    await close();
  });

  it('shows exchange outcomes by error code, with what INVALID_CODE usually means beside it', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.goto(`${origin}/console/#/exchanges`);
    await page.waitForSelector('table.outcomes');
    expect(await page.locator('figure.chart svg rect').count()).toBeGreaterThan(0);
    expect(digits(await page.locator('tr[data-outcome=disclosed] td').first().textContent())).toBe(3);
    const invalid = await page.locator('tr[data-outcome=INVALID_CODE]').textContent();
    expect(invalid).toContain('wx.login');
    // An app with no exchanges: the empty state, not an empty chart.
    await page.selectOption('#exchanges-app', OTHER_APP.appid);
    await page.waitForSelector('.state-empty');
    await check();
    await close();
  });

  it("reconciles a period: WeChat's growth beside the gateway's counts, or what is missing to compare", async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.goto(`${origin}/console/#/reconciliation/${APP}`);
    await page.waitForSelector('[data-report]');
    // One sync only: nothing brackets the week, and the page says how to fix that.
    expect(await page.locator('[data-report] .notice').textContent()).toContain('之前和之后各同步一次');
    expect(digits(await page.locator('[data-field=confirmed] .stat-value').textContent())).toBe(3);
    expect(digits(await page.locator('[data-field=unconfirmed] .stat-value').textContent())).toBe(1);
    await check();
    await close();
  });

  it('says when the gateway cannot be reached, keeps the session, and recovers on retry', async () => {
    const { page, context, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    let down = true;
    await context.route(`${origin}/graphql`, (route) => (down ? route.abort() : route.continue()));
    // On a page already signed in,
    await page.click('header nav a[href="#/exchanges"]');
    await page.waitForSelector('.state-error');
    expect(await page.locator('.state-error').textContent()).toContain('无法连接网关');
    // and on a reload, when even the token cannot be checked: it is kept, not forgotten.
    await page.reload();
    await page.waitForSelector('.state-error');
    expect((await browserStorage(page)).session).toEqual({ [TOKEN_KEY]: operatorToken });
    down = false;
    await page.click('.state-error button');
    await page.waitForSelector('table.outcomes');
    await close();
  });

  it('offers a quota:read token no audit page and no admin action', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, await t.token('viewer', { appid: undefined, scopes: ['quota:read'] }));
    await page.waitForSelector('[data-ready] tr[data-appid]');
    expect(await page.locator('header nav a').allInnerTexts()).toEqual(['应用总览', '对账', '号码兑换']);
    await page.goto(`${origin}/console/#/apps/${APP}`);
    await page.waitForSelector(`tr[data-pack="${oldPack}"]`);
    expect(await page.locator('[data-action=sync]').count()).toBe(0);
    expect(await page.locator('table.packs button').count()).toBe(0);
    // Asking for the audit page by its address lands on the overview instead.
    await page.goto(`${origin}/console/#/audit`);
    await page.waitForFunction(() => location.hash === '#/overview');
    expect(await page.locator('[data-action=verify], [data-action=erase], [data-action=export]').count()).toBe(0);
    await check();
    await close();
  });

  it('offers an audit:read token the audit pages without the erase action, and no quota pages', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, await t.token('auditor', { appid: undefined, scopes: ['audit:read'] }));
    await page.waitForFunction(() => location.hash === '#/audit');
    expect(await page.locator('header nav a').allInnerTexts()).toEqual(['授权审计']);
    // No app list without quota:read: the appid is typed.
    await page.fill('#records-app', APP);
    await page.click('[data-action=search]');
    await page.waitForSelector('tr[data-record]');
    expect(await page.locator('[data-action=erase]').count()).toBe(0);
    // The export is the gateway's NDJSON, fetched with the token in a header and saved as a file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-action=export]')]);
    expect(download.suggestedFilename()).toBe(`consent-${APP}.ndjson`);
    const lines = (await streamText(await download.createReadStream())).trim().split('\n').map((l) => JSON.parse(l) as { appid: string; maskedPhone: string | null });
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.every((l) => l.appid === APP)).toBe(true);
    expect(JSON.stringify(lines)).not.toMatch(new RegExp(phones.join('|')));
    await check();
    await close();
  });

  it('switches to English, keeps the choice, and keeps no number, code or token but its own in the browser', async () => {
    const { page, check, close } = await openPage();
    await signInByLink(page, operatorToken);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    await page.click('button[lang=en]');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    expect(await page.locator('header nav a').allInnerTexts()).toEqual(['Apps', 'Reconciliation', 'Exchanges', 'Consent audit']);
    await page.reload();
    await page.waitForSelector('[data-ready] tr[data-appid]');
    expect(await page.locator('h1').first().textContent()).toBe('Apps at a glance');

    // Through every page, with an openid typed into the audit filter.
    await page.goto(`${origin}/console/#/apps/${APP}`);
    await page.waitForSelector('table.packs');
    await page.goto(`${origin}/console/#/reconciliation/${APP}`);
    await page.waitForSelector('[data-report]');
    await page.goto(`${origin}/console/#/exchanges`);
    await page.waitForSelector('table.outcomes');
    await page.goto(`${origin}/console/#/audit`);
    await page.selectOption('#records-app', APP);
    await page.fill('input[name=subject]', 'o_someone_typed');
    await page.click('[data-action=search]');
    await page.waitForSelector('.state-empty');

    const stored = await browserStorage(page);
    expect(stored).toEqual({ local: { 'wxphone.console.lang': 'en' }, session: { [TOKEN_KEY]: operatorToken }, cookies: '', indexedDb: [], caches: [] });
    const addresses = await page.evaluate(() => [location.href, document.referrer]);
    expect(addresses.join(' ')).not.toMatch(/token=|o_someone_typed/);
    await check();
    await close();
  });

  it('reads on a phone: no page wider than the screen, tables scroll inside themselves', async () => {
    const { page, check, close } = await openPage({ width: 390, height: 844 });
    await signInByLink(page, operatorToken);
    for (const hash of ['#/overview', `#/apps/${APP}`, `#/reconciliation/${APP}`, '#/exchanges', '#/audit']) {
      await page.goto(`${origin}/console/${hash}`);
      await page.waitForSelector('main h1');
      await page.waitForTimeout(300);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), hash).toBe(true);
    }
    await check();
    await close();
  });
});

describe.skipIf(!chromiumAvailable)('the console overview with 500 apps', () => {
  let t: TestGateway;
  let browser: Browser;
  const apps = Array.from({ length: 500 }, (_, i) => ({
    appid: `wx${(0xa000_0000 + i).toString(16)}${randomBytes(4).toString('hex')}`,
    secret: `secret-${i}-${randomBytes(8).toString('hex')}`,
    ...(i % 10 === 0 ? { subjectType: 'government' } : {}),
    ...(i % 7 === 0 ? { lowQuota: { unitsBelow: 1500 } } : {}),
  }));

  beforeAll(async () => {
    await ensureConsoleBuilt();
    // The apps come from a config file, as an operator would declare them: nothing is registered one by one.
    t = await startTestGateway({ backend: BACKENDS[0]!, configFile: { apps, wechat: { timeoutMs: 1500, maxRetries: 0 }, billing: { syncIntervalSeconds: 0 } } });
    browser = await launchChromium();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('renders every app, sortable and filterable, in well under a few seconds', async () => {
    const origin = new URL(t.url).origin;
    const token = await t.token('ops', { appid: undefined, scopes: ['quota:read'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // Warm the connection and the browser's cache of the assets, as a returning operator's would be.
    await page.goto(consoleLink(origin, token));
    await page.waitForSelector('[data-ready] tr[data-appid]', { timeout: 30_000 });
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.reload();
      await page.waitForFunction(() => performance.getEntriesByName('console:overview-rendered').length > 0, undefined, { timeout: 30_000 });
      times.push(await page.evaluate(() => performance.getEntriesByName('console:overview-rendered')[0]!.startTime));
    }
    expect(await page.locator('tr[data-appid]').count()).toBe(500);
    const median = [...times].sort((a, b) => a - b)[1]!;
    console.info(`[console] 500-app overview: navigation to rendered table ${times.map((ms) => `${Math.round(ms)} ms`).join(', ')} (median ${Math.round(median)} ms)`);
    expect(median).toBeLessThan(5000);

    const sortStarted = await page.evaluate(() => performance.now());
    await page.click('th:nth-child(3) button.sort');
    await page.click('th:nth-child(3) button.sort');
    const sortMs = (await page.evaluate(() => performance.now())) - sortStarted;
    const remaining = await page.locator('tr[data-appid] [data-col=remaining]').allTextContents();
    expect(remaining.length).toBe(500);
    console.info(`[console] 500-app overview: two sorts in ${Math.round(sortMs)} ms`);
    await page.selectOption('.toolbar select', 'exempt');
    expect(await page.locator('tr[data-appid]').count()).toBe(50);
    await context.close();
  }, 90_000);
});
