// wss_report.js - the wss rows of `make bench` (bench/run.sh, issue 16) as a
// Markdown section for RESULTS.md: the median of each server's runs per
// row, and gcs against the better of the two peers.
// usage: node wss_report.js wss.jsonl >> RESULTS.md
'use strict';
const fs = require('fs');

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const servers = ['gcs-wss', 'lws-wss', 'node-wss'];
const names = { 'gcs-wss': 'gcs (native echo)', 'lws-wss': 'libwebsockets', 'node-wss': 'Node https + ws' };
const rows = [
  ['wss echo 32B x100 w16', 'msgs_per_s', 'messages/s, 32 B × 100 conns × 16 in flight', 1],
  ['wss echo 1024B x100 w16', 'msgs_per_s', 'messages/s, 1 KiB × 100 conns × 16 in flight', 1],
  ['wss handshake', 'handshakes_per_s', 'TLS handshakes + upgrades /s (32 at a time)', 1],
  ['wss idle', 'rss_per_conn_b', 'RSS per idle wss connection (bytes)', -1],
];
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const out = [];
out.push('', '## wss (TLS): gcs vs libwebsockets vs Node https + ws', '');
out.push('bench/run.sh\'s wss section: every server -w 1 / one thread on CPU 0, `bench/loadgen --tls` on CPU 1;');
out.push('one RSA-2048 certificate; a full TLS handshake per connection (no resumption); medians of the runs.', '');
out.push('| row | ' + servers.map((s) => names[s]).join(' | ') + ' | gcs / better peer |');
out.push('| --- | ' + servers.map(() => '---:').join(' | ') + ' | ---: |');
for (const [label, key, what, dir] of rows) {
  const med = {};
  const errs = [];
  for (const s of servers) {
    const runs = lines.filter((l) => l.server === s && l.label === label);
    med[s] = median(runs.filter((l) => typeof l[key] === 'number').map((l) => l[key]));
    for (const l of runs) if (l.error || l.conn_errors) errs.push(`${s}: ${l.error || l.conn_errors + ' connection errors'}`);
  }
  const peers = ['lws-wss', 'node-wss'].map((s) => med[s]).filter(Number.isFinite);
  const best = peers.length ? (dir > 0 ? Math.max(...peers) : Math.min(...peers)) : NaN;
  const ratio = Number.isFinite(best) && best > 0 && Number.isFinite(med['gcs-wss'])
    ? (med['gcs-wss'] / best).toFixed(2) + '×' : '—';
  out.push(`| ${what} | ` + servers.map((s) => fmt(med[s])).join(' | ') + ` | ${ratio} |`);
  if (errs.length) out.push(`| (errors: ${errs.join('; ')}) | | | | |`);
}
out.push('');
process.stdout.write(out.join('\n') + '\n');
