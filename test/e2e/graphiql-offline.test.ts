import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { BACKENDS } from '../support/backends.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';

/**
 * GraphiQL in a real browser (headless Chromium) that may reach nothing but the gateway: every
 * request elsewhere is refused and recorded. The page must render and load the schema.
 */
describe.skipIf(!chromiumAvailable)('GraphiQL with no network beyond the gateway', () => {
  let t: TestGateway;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[0]! });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('renders, loads its editor and the schema, and asks nothing of any other host', async () => {
    const origin = new URL(t.url).origin;
    const page = await browser.newPage();
    const elsewhere: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    const introspected = page.waitForRequest((r) => r.url().startsWith(t.url) && r.method() === 'POST' && (r.postData() ?? '').includes('IntrospectionQuery'), { timeout: 30_000 });
    await page.goto(t.url, { waitUntil: 'load' });
    await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
    await introspected;
    // The query editor is Monaco, which runs in the workers served from here.
    await page.waitForSelector('.graphiql-query-editor .monaco-editor', { timeout: 30_000 });
    expect(await page.locator('#root').innerText()).not.toMatch(/^Loading/);
    expect(errors).toEqual([]);
    expect(elsewhere).toEqual([]);
    await page.close();
  }, 60_000);
});
