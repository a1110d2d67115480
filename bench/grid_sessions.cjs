// Session setup latency: connect -> new page -> close, sequentially, for
// each endpoint in turn (rounds interleave them so drift hits all alike).
// Usage: node grid_sessions.cjs ROUNDS PER_ROUND name=ws://... ...
// Prints one JSON object: {name: {n, p50, p90, p99, connectP50}} in
// milliseconds; connect is the chromium.connect part alone.
const { chromium } = require('playwright-core');
const [rounds, perRound, ...targets] = process.argv.slice(2);
const eps = targets.map((t) => t.split(/=(.*)/s).slice(0, 2));
const samples = Object.fromEntries(eps.map(([n]) => [n, []]));
const connects = Object.fromEntries(eps.map(([n]) => [n, []]));
const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
(async () => {
  for (const [, ws] of eps) { const b = await chromium.connect(ws); await b.close(); } // warm up
  for (let r = 0; r < +rounds; r++) {
    for (const [name, ws] of eps) {
      for (let i = 0; i < +perRound; i++) {
        const t0 = process.hrtime.bigint();
        const b = await chromium.connect(ws);
        connects[name].push(Number(process.hrtime.bigint() - t0) / 1e6);
        await b.newPage();
        await b.close();
        samples[name].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  const out = {};
  for (const [name, xs] of Object.entries(samples)) {
    xs.sort((a, b) => a - b);
    const cs = connects[name].sort((a, b) => a - b);
    out[name] = { n: xs.length, p50: +q(xs, 0.5).toFixed(2), p90: +q(xs, 0.9).toFixed(2), p99: +q(xs, 0.99).toFixed(2),
      connectP50: +q(cs, 0.5).toFixed(2), connectP99: +q(cs, 0.99).toFixed(2) };
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
