#!/usr/bin/env node
// scrape.js - a Prometheus-like scraper for `make bench` (bench/run.sh, rows
// "metrics"): GET http://127.0.0.1:PORT/metrics every INTERVAL ms (a new
// connection each time, as Prometheus's scrapes of gcs are: gcs's admin
// answers one request per connection) until SIGTERM or SIGINT, then one
// JSON line on stdout: scrapes answered 200, failures, bytes per scrape.
//
//   node bench/scrape.js PORT [INTERVAL_MS=100]
const http = require('node:http');

const port = Number(process.argv[2]);
const interval = Number(process.argv[3] || 100);
if (!port) {
  process.stderr.write('usage: scrape.js PORT [INTERVAL_MS]\n');
  process.exit(1);
}
let ok = 0;
let failed = 0;
let bytes = 0;

function scrape() {
  const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 1000, agent: false }, (res) => {
    let n = 0;
    res.on('data', (d) => { n += d.length; });
    res.on('end', () => {
      if (res.statusCode === 200) { ok++; bytes += n; } else failed++;
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { failed++; });
}

const timer = setInterval(scrape, interval);
scrape();
function stop() {
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ scrapes: ok, failed, bytes_per_scrape: ok ? Math.round(bytes / ok) : 0 }) + '\n');
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
