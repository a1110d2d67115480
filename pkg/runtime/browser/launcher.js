// crawlctl's Playwright browser server (run with node -e, playwright-core
// found through NODE_PATH): launches one browser with launchServer on
// loopback and prints its endpoint as one JSON line. It exits when its
// stdin closes (the crawlctl worker that started it is gone) or on
// SIGTERM, closing the browser first.
const playwright = require('playwright-core');

(async () => {
  const cfg = JSON.parse(process.env.CRAWLCTL_LAUNCH);
  const server = await playwright[cfg.browser].launchServer({
    executablePath: cfg.executablePath || undefined,
    headless: true,
    host: '127.0.0.1',
    port: 0,
    args: cfg.args,
  });
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(1), 5000).unref();
    try { await server.close(); } finally { process.exit(0); }
  };
  process.stdin.on('end', close);
  process.stdin.on('error', close);
  process.stdin.resume();
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
  server.process().on('exit', () => { if (!closing) process.exit(2); });
  process.stdout.write(JSON.stringify({ wsEndpoint: server.wsEndpoint() }) + '\n');
})().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
