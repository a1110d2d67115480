// A real Playwright client for the grid tests. Config (JSON, argv[2]):
// {ws, sessions, concurrency, url, holdMs, holdStdin, connectTimeoutMs}. Runs
// `sessions` sessions, `concurrency` at a time; each connects, opens url in
// a new page, reads the title, holds holdMs (with holdStdin: prints
// {i, connected: true} and holds until stdin ends, then uses the page
// again), closes. Prints one JSON line per session:
// {i, ok, title, connectMs, startedAt, connectedAt, endedAt, error}.
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2]);

async function session(i) {
  const startedAt = Date.now();
  const out = { i, ok: false, startedAt };
  let browser;
  try {
    browser = await chromium.connect(cfg.ws, { timeout: cfg.connectTimeoutMs || 150000 });
    out.connectedAt = Date.now();
    out.connectMs = out.connectedAt - startedAt;
    const page = await browser.newPage();
    if (cfg.url) await page.goto(cfg.url);
    out.title = await page.title();
    if (cfg.holdMs) await new Promise((r) => setTimeout(r, cfg.holdMs));
    if (cfg.holdStdin) {
      process.stdout.write(JSON.stringify({ i, connected: true }) + '\n');
      await new Promise((r) => process.stdin.on('end', r).resume());
      await page.setContent('<title>still here</title>');
      out.title = await page.title();
    }
    out.ok = true;
  } catch (err) {
    out.error = String(err && err.message || err);
  } finally {
    if (browser) await browser.close().catch(() => {});
    out.endedAt = Date.now();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

(async () => {
  let next = 0;
  const lane = async () => {
    while (next < cfg.sessions) await session(next++);
  };
  await Promise.all(Array.from({ length: cfg.concurrency || 1 }, lane));
})();
