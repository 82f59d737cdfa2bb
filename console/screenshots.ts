import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { BACKENDS } from '../test/support/backends.js';
import { APP, startTestGateway } from '../test/support/gateway.js';
import { launchChromium } from '../test/support/browser.js';
import { DEMO_EXTRA_APPS, seedConsoleDemo } from '../test/support/console-demo.js';
import { ensureConsoleBuilt } from './build.js';
import { CONSOLE_SCOPES, consoleLink } from './link.js';

/**
 * `npm run console:screenshots`: the README's pictures of the console, taken in headless Chromium
 * from a test gateway seeded with a month of demo operations (test/support/console-demo.ts).
 * The Chinese screens need a CJK font on the machine (Debian: fonts-wqy-microhei or fonts-noto-cjk).
 */
const OUT = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));

await ensureConsoleBuilt();
mkdirSync(OUT, { recursive: true });
const t = await startTestGateway({ backend: BACKENDS[0]!, extraApps: DEMO_EXTRA_APPS });
const browser = await launchChromium();
try {
  const { subject } = await seedConsoleDemo(t);
  const origin = new URL(t.url).origin;
  const token = await t.token('ops-lead', { appid: undefined, scopes: [...CONSOLE_SCOPES], ttl: '1h' });

  const open = async (lang: 'zh-CN' | 'en', width: number, height: number) => {
    const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
    await context.addInitScript((l) => localStorage.setItem('wxphone.console.lang', l), lang);
    const page = await context.newPage();
    await page.goto(consoleLink(origin, token));
    await page.waitForSelector('header.top');
    return { page, close: () => context.close() };
  };
  const shot = async (page: Page, name: string, fullPage = true) => {
    await page.waitForTimeout(400);
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage });
    console.log(`docs/screenshots/${name}.png`);
  };

  {
    const { page, close } = await open('zh-CN', 1360, 800);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    await shot(page, 'overview');
    await page.goto(`${origin}/console/#/apps/${APP}`);
    await page.waitForSelector('table.packs');
    await shot(page, 'app');
    await page.goto(`${origin}/console/#/audit`);
    await page.click('[data-action=verify]');
    await page.waitForSelector('[data-verify]');
    await page.selectOption('#records-app', APP);
    await page.fill('input[name=subject]', subject);
    await page.click('[data-action=search]');
    await page.waitForSelector('tr[data-record]');
    await page.click('[data-action=erase]');
    await page.waitForSelector('dialog[open]');
    await shot(page, 'audit-erase', false);
    await close();
  }
  {
    const { page, close } = await open('en', 1360, 800);
    await page.goto(`${origin}/console/#/reconciliation/${APP}`);
    await page.waitForSelector('[data-report]');
    await shot(page, 'reconciliation');
    await page.goto(`${origin}/console/#/exchanges`);
    await page.selectOption('.toolbar select:not(#exchanges-app)', '30d');
    await page.waitForSelector('table.outcomes');
    await shot(page, 'exchanges');
    await close();
  }
  {
    const { page, close } = await open('zh-CN', 390, 844);
    await page.waitForSelector('[data-ready] tr[data-appid]');
    await shot(page, 'overview-phone', false);
    await close();
  }
} finally {
  await browser.close();
  await t.close();
}
