// Headless Chromium (Debian's) for the e2e tests: a page opened in a
// browser of its own, killed with its helpers (a process group), and the
// report the page sends to the recorder adapter as /rec/report?r=JSON.
const { spawn } = require('node:child_process');
const h = require('./harness');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const running = new Set();

// Opens 'page' with its profile in 'profileDir'; 'extra': more flags.
function openPage(page, profileDir, extra = []) {
  const b = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ...extra, '--user-data-dir=' + profileDir, page,
  ], { stdio: 'ignore', detached: true });
  running.add(b);
  return b;
}

// Chromium forks helpers: kill its whole process group.
function killBrowser(b) {
  running.delete(b);
  if (b && b.exitCode === null) {
    try { process.kill(-b.pid, 'SIGKILL'); } catch { b.kill('SIGKILL'); }
  }
}

function killBrowsers() {
  for (const b of [...running]) killBrowser(b);
}

// The page's report, parsed, once the recorder's log 'log' has it (bounded).
async function pageReport(log) {
  const ev = await h.waitEvents(log, (e) => e.some((l) => l.includes('/rec/report?r=')), 'the page report', 1200);
  const line = ev.find((l) => l.includes('/rec/report?r='));
  return JSON.parse(decodeURIComponent(line.split(' ')[2].split('?r=')[1]));
}

module.exports = { CHROMIUM, openPage, killBrowser, killBrowsers, pageReport };
