// Real redis-server processes for the e2e tests, on loopback ports: a free
// port (redis-server has no --port 0), a PING probe, and a server started
// and stopped with bounded waits. Each test file keeps the processes it
// started in a set of its own, so its after() can kill what is left.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

// A port nobody listens on now.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// true when a Redis on 'port' answers PING (within 1 s).
function ping(port) {
  return new Promise((resolve) => {
    let got = '';
    const c = net.connect(port, '127.0.0.1', () => c.write('PING\r\n'));
    const done = (v) => { clearTimeout(timer); c.destroy(); resolve(v); };
    const timer = setTimeout(() => done(false), 1000);
    c.on('data', (d) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
    c.on('error', () => done(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starters of redis-server that add each process to 'servers' (and take
// it out when stopped); their files go to a temporary directory named
// after 'prefix'.
function redisServers(servers, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  async function startRedis(port) {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    p.text = '';
    p.stdout.on('data', (d) => { p.text += d; });
    p.stderr.on('data', (d) => { p.text += d; });
    p.exited = new Promise((r) => p.on('exit', r));
    servers.add(p);
    for (let i = 0; i < 200; i++) {
      if (p.exitCode !== null) break;
      if (await ping(port)) return p;
      await sleep(25);
    }
    p.kill('SIGKILL');
    throw new Error(`redis-server did not answer on ${port}:\n${p.text}`);
  }
  async function stopRedis(p) {
    p.kill('SIGTERM');
    let timer;
    const late = new Promise((r) => { timer = setTimeout(() => r('late'), 10000); });
    if (await Promise.race([p.exited, late]) === 'late') {
      p.kill('SIGKILL');
      await p.exited;
    }
    clearTimeout(timer);
    servers.delete(p);
  }
  return { dir, startRedis, stopRedis };
}

module.exports = { freePort, ping, redisServers };
