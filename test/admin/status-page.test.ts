/**
 * The admin listener's /status page in a real browser (headless Chromium via
 * playwright-core; `apt-get install chromium`, deploy/debian-setup.sh): a
 * real cluster and githa, one healthy and one frozen repository. The frozen
 * one must read as frozen in words, its page must be reachable by its link,
 * and a freeze detail full of HTML must show as text, never as markup.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { repoKey, waitFor } from '../support/state.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror="document.title=1"><script>alert(1)</script> & "ops"';

describe('/status in a browser', () => {
  const cluster = useCluster({ backends: 3 });
  let browser: Browser | undefined;

  afterAll(async () => {
    await browser?.close();
  });

  it('shows a frozen repository as frozen, links to its page, and escapes what Redis holds', async () => {
    const githa = await startGitha(cluster(), { config: { metrics: { statusRefreshMs: 500 } } });
    const git = GitClient.forCluster(cluster());
    for (const repo of ['web/ok', 'web/held']) {
      await cluster().createRepository(`${repo}.git`);
      const work = await git.init(repo.replace('/', '-'));
      await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
      await git.push(work, githa.url(repo), ['main']);
    }
    // An operator's maintenance freeze, with a detail no page may render as markup.
    await cluster().redis.cli('HSET', repoKey('web/held', 'frozen'), 'reason', 'maintenance', 'detail', HOSTILE, 'since', String(Date.now()));

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    // A phone-sized viewport: the page must be readable there.
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });

    // The snapshot refreshes every 500 ms here: wait until it shows the freeze.
    // Shown in the box of repositories needing attention (and in the paged list below it).
    const row = page.locator('#attention tr', { has: page.locator('a', { hasText: 'web/held.git' }) });
    await waitFor('the status page shows web/held.git as frozen', async () => {
      const res = await page.goto(`${githa.adminUrl}/status`);
      expect(res?.status()).toBe(200);
      return (await row.count()) === 1 && /\bfrozen\b/.test(await row.innerText());
    });
    expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('10');
    expect(await page.locator('meta[name="viewport"]').count()).toBe(1);
    expect(await row.innerText()).toContain('maintenance');
    const ok = page.locator('#repositories tr', { has: page.locator('a', { hasText: 'web/ok.git' }) });
    expect(await ok.innerText()).toMatch(/synchronized|partial/);
    expect(await page.locator('body').innerText()).toMatch(/b1[\s\S]*b2[\s\S]*b3/);
    const dir = mkdtempSync(join(tmpdir(), 'githa-status-'));
    const overview = join(dir, 'status.png');
    await page.screenshot({ path: overview, fullPage: true });

    await row.locator('a').click();
    await page.waitForURL(/\/status\/repo\/web%2Fheld\.git$/);
    await expect.poll(() => page.locator('h1').innerText()).toMatch(/web\/held\.git\s+frozen/);
    const text = await page.locator('body').innerText();
    // The hostile detail is shown as text; no element came out of it.
    expect(text).toContain(HOSTILE);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    // Per backend: version, checksum, leader; and the push log.
    for (const b of ['b1', 'b2', 'b3']) expect(text).toContain(b);
    expect(text).toMatch(/push/);
    expect(text).toContain('refs/heads/main');
    const repoShot = join(dir, 'repo.png');
    await page.screenshot({ path: repoShot, fullPage: true });

    for (const shot of [overview, repoShot]) {
      expect(existsSync(shot)).toBe(true);
      expect(statSync(shot).size).toBeGreaterThan(1000);
    }
    console.log(`status page screenshots: ${overview} ${repoShot}`);

    // A repository githa has no record of is a 404 page, not an error.
    const missing = await page.goto(`${githa.adminUrl}/status/repo/${encodeURIComponent('no/such.git')}`);
    expect(missing?.status()).toBe(404);
  });
});
