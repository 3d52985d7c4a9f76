#!/usr/bin/env node
// cluster_report.js - the section of bench/RESULTS.md for the rows of issue
// 19 (bench/run.sh): publish -> delivery through Redis between two gcs
// against in-process on one gcs, and the echo path with the admin listener
// off against on and scraped. Reads the JSON lines of those rows
// ($BUILD/bench/cluster.jsonl); rounds are the i-th line of each server
// (run.sh alternates them). Inserts the section before "## Analysis
// (bench/NOTES.md)" of --out, or appends it; --standalone writes a whole
// file (BENCH_CLUSTER_ONLY=1).
const fs = require('node:fs');
const os = require('node:os');

const opt = {};
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'standalone') opt.standalone = true;
  else opt[k] = process.argv[++i];
}
const rows = fs.readFileSync(opt.results, 'utf8').split('\n').filter(Boolean).map((l) => {
  try { return JSON.parse(l); } catch { return { error: 'bad line: ' + l.slice(0, 80) }; }
});
const of = (server) => rows.filter((r) => r.server === server);
const ok = (r) => !r.error && (r.msgs_per_s || 0) > 0;
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (v, digits = 3) => {
  if (v === null || v === undefined) return '–';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toString();
};
const spread = (xs, digits) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return '–';
  return `${fmt(median(s), digits)} (${fmt(s[0], digits)}–${fmt(s[s.length - 1], digits)})`;
};
const ratioStr = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return '–';
  return `**${median(s).toFixed(2)}×** (${s[0].toFixed(2)}–${s[s.length - 1].toFixed(2)})`;
};
// Per-round ratios b/a of 'key' over the rounds where both measured (with
// 'quiet', only those where the rest of the machine used under QUIET % of
// a CPU during both runs).
const QUIET = Number(opt.quiet) > 0 ? Number(opt.quiet) : 25; // BENCH_QUIET=0 (no wait): 25
const calm = (r) => typeof r.others_cpu_pct === 'number' && r.others_cpu_pct < QUIET;
const perRound = (a, b, key, quiet = false) => {
  const out = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (quiet && !(calm(a[i]) && calm(b[i]))) continue;
    if (ok(a[i]) && ok(b[i]) && a[i][key] > 0) out.push(b[i][key] / a[i][key]);
  }
  return out;
};
const quietLine = (a, b, keys) => {
  const n = perRound(a, b, keys[0][1], true).length;
  if (!n) return `No round had the rest of the machine under ${QUIET} % of a CPU during both runs.`;
  return `The ${n} round${n === 1 ? '' : 's'} where the rest of the machine used under ${QUIET} % of a CPU during both runs: ` +
    keys.map(([name, key]) => `${name} ${ratioStr(perRound(a, b, key, true))}`).join('; ') + '.';
};

const lines = [];
const p = (s = '') => lines.push(s);
const table = (head, body) => {
  p(`| ${head.join(' | ')} |`);
  p(`| ${head.map((h, i) => (i ? '---:' : '---')).join(' | ')} |`);
  for (const r of body) p(`| ${r.join(' | ')} |`);
  p();
};

p('## Past one machine (issue 19): publish through Redis; /metrics on the echo path');
p();
if (opt.standalone) {
  p(`- **Date:** ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC`);
  p(`- **Command:** \`${opt.cmd}\` (${opt.elapsed} s); gcs built ${opt['build-type']}`);
  p(`- **Machine:** ${os.cpus().length} CPUs, ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`);
  p(`- **Load before the run:** ${opt['load-before']} (1/5/15 min); other busy processes: ${opt.busy}`);
  p();
}

const redis = of('pub-redis');
const local = of('pub-local');
if (redis.length || local.length) {
  const any = [...redis, ...local].find(ok) || {};
  p(`**Publish → delivery** (\`bench/publish.js\`, Node ${opt.node || '?'} \`ws\`, against \`bench/pubsub.lua\` on`);
  p(`gcs \`-w 1\`): ${any.pubs} publishers each keep ${any.window} messages of ${any.size} B in flight; a message is done when`);
  p(`all ${any.subs} subscribers have it; latency is send → delivery (the send time is in the payload).`);
  p(`*Through Redis*: publishers on gcs A, subscribers on gcs B, both with \`"redis"\` to one`);
  p(`redis-server ${opt.redis || ''} (gc.publish → PUBLISH → each host's PSUBSCRIBE → B broadcasts);`);
  p('*in-process*: one gcs without `"redis"`, publishers and subscribers on it. Server side (2 gcs +');
  p('redis-server, or 1 gcs) pinned to CPU 0, load generator to CPU 1; the two alternate, every other');
  p('round in reverse order. Medians over the rounds (min–max); the ratio is the median of the per-round ratios.');
  p();
  const cpu = (rs, name) => spread(rs.filter(ok).map((r) => (r.cpu_pct || {})[name]));
  // The server side's CPU seconds per million messages done (every gcs and
  // redis-server together): less moved than the rate by a busy machine.
  for (const r of [...redis, ...local]) {
    if (!ok(r)) continue;
    const pct = Object.values(r.cpu_pct || {}).reduce((a, b) => a + b, 0);
    r.server_cpu_s_per_mmsg = (pct / 100 / r.msgs_per_s) * 1e6;
  }
  const perM = (rs) => spread(rs.filter(ok).map((r) => r.server_cpu_s_per_mmsg));
  table(['', 'messages/s', 'deliveries/s', 'p50 (µs)', 'p99 (µs)', 'p99.9 (µs)', 'server-side CPU %', 'server-side CPU s per million messages', 'loadgen CPU %', 'others CPU %', 'rounds'], [
    ['through Redis (2 hosts)', spread(redis.filter(ok).map((r) => r.msgs_per_s)), spread(redis.filter(ok).map((r) => r.deliveries_per_s)),
      spread(redis.filter(ok).map((r) => r.lat_p50_us)), spread(redis.filter(ok).map((r) => r.lat_p99_us)),
      spread(redis.filter(ok).map((r) => r.lat_p999_us)),
      `A ${cpu(redis, 'gcs_a')}, B ${cpu(redis, 'gcs_b')}, redis ${cpu(redis, 'redis')}`, perM(redis),
      spread(redis.filter(ok).map((r) => r.loadgen_cpu_pct)), spread(redis.filter(ok).map((r) => r.others_cpu_pct)),
      `${redis.filter(ok).length} of ${redis.length}`],
    ['in-process (1 host)', spread(local.filter(ok).map((r) => r.msgs_per_s)), spread(local.filter(ok).map((r) => r.deliveries_per_s)),
      spread(local.filter(ok).map((r) => r.lat_p50_us)), spread(local.filter(ok).map((r) => r.lat_p99_us)),
      spread(local.filter(ok).map((r) => r.lat_p999_us)), `gcs ${cpu(local, 'gcs')}`, perM(local),
      spread(local.filter(ok).map((r) => r.loadgen_cpu_pct)), spread(local.filter(ok).map((r) => r.others_cpu_pct)),
      `${local.filter(ok).length} of ${local.length}`],
  ]);
  p(`Through Redis / in-process, per round: messages/s ${ratioStr(perRound(local, redis, 'msgs_per_s'))};`);
  p(`server-side CPU s per million messages ${ratioStr(perRound(local, redis, 'server_cpu_s_per_mmsg'))};`);
  p(`p50 latency ${ratioStr(perRound(local, redis, 'lat_p50_us'))}; p99 latency ${ratioStr(perRound(local, redis, 'lat_p99_us'))}.`);
  p(quietLine(local, redis, [['messages/s', 'msgs_per_s'], ['server-side CPU s per million', 'server_cpu_s_per_mmsg'],
    ['p50', 'lat_p50_us'], ['p99', 'lat_p99_us']]));
  const errs = [...redis, ...local].filter((r) => r.error || r.errors);
  if (errs.length) p(`Errors: ${errs.map((r) => `${r.server}: ${r.error || r.errors}`).join('; ')}.`);
  p();
}

const off = of('echo-admin-off');
const on = of('echo-admin-on');
if (off.length || on.length) {
  const sc = of('scraper').filter((r) => !r.error);
  const scrapes = sc.reduce((n, r) => n + r.scrapes, 0);
  const failed = sc.reduce((n, r) => n + r.failed, 0);
  p('**The cost of /metrics on the echo path**: gcs + the native echo, `-w 1` on CPU 0, `bench/loadgen');
  p('--mode echo` 32 B × 100 connections × 16 in flight on CPU 1; admin listener off, against a second gcs');
  p('with `"admin"` on, scraped every 100 ms during each of its runs (`bench/scrape.js`, a new connection');
  p(`per GET as Prometheus's scrapes of gcs are, on CPU 1): ${scrapes} scrapes answered`);
  p(`(${median(sc.map((r) => r.bytes_per_scrape)) || 0} B each), ${failed} failed. Alternating, every other round in reverse order.`);
  p();
  const row = (name, rs) => [name, spread(rs.filter(ok).map((r) => r.msgs_per_s)),
    spread(rs.filter(ok).map((r) => r.server_cpu_s_per_mmsg)), spread(rs.filter(ok).map((r) => r.lat_p50_us)),
    spread(rs.filter(ok).map((r) => r.lat_p99_us)), spread(rs.filter(ok).map((r) => r.others_cpu_pct)),
    `${rs.filter(ok).length} of ${rs.length}`];
  table(['', 'messages/s', 'server CPU s per million', 'p50 (µs)', 'p99 (µs)', 'others CPU %', 'rounds'],
    [row('admin off', off), row('admin on, scraped every 100 ms', on)]);
  p(`On / off, per round: messages/s ${ratioStr(perRound(off, on, 'msgs_per_s'))}; server CPU s per million`);
  p(`messages ${ratioStr(perRound(off, on, 'server_cpu_s_per_mmsg'))}.`);
  p(quietLine(off, on, [['messages/s', 'msgs_per_s'], ['server CPU s per million', 'server_cpu_s_per_mmsg']]));
  p();
}

const section = lines.join('\n');
if (opt.standalone) {
  fs.writeFileSync(opt.out, `# gcs benchmarks: the rows of issue 19\n\nGenerated by \`bench/run.sh\`.\n\n${section}`);
} else {
  let text = fs.existsSync(opt.out) ? fs.readFileSync(opt.out, 'utf8') : '';
  const at = text.indexOf('\n## Analysis (bench/NOTES.md)');
  text = at >= 0 ? `${text.slice(0, at + 1)}${section}\n${text.slice(at + 1)}` : `${text}\n${section}`;
  fs.writeFileSync(opt.out, text);
}
process.stdout.write(section);
