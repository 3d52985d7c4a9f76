// A flood of hostile clients is not a flood of log lines: lines about
// connections pass logging.conn_lines_per_second, the rest are counted and
// reported in one line a second; nothing is lost from the count.
const { test, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

after(() => h.killAll());

test('40 clients sending invalid frames: 5 lines a second, the rest counted', async () => {
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'echo' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'echo' }],
    logging: { level: 'NORMAL', conn_lines_per_second: 5 },
  });
  const port = gcs.port;
  // An unmasked client frame: wslay refuses it and closes with 1002.
  const bad = Buffer.concat([Buffer.from(h.upgradeRequest('/')), Buffer.from([0x81, 0x02, 0x68, 0x69])]);
  await Promise.all(Array.from({ length: 40 }, () => h.rawExchange(port, bad)));
  const count = () => {
    const logged = (gcs.stderrText.match(/N: connection 127\.0\.0\.1:\d+: invalid frame, closing with 1002/g) || []).length;
    const dropped = [...gcs.stderrText.matchAll(/W: (\d+) lines about connections not logged in the last second/g)]
      .reduce((n, m) => n + Number(m[1]), 0);
    return { logged, dropped };
  };
  // The count of a second is reported within the next one (housekeeping).
  for (let i = 0; i < 120 && count().logged + count().dropped < 40; i++) await h.sleep(25);
  const { logged, dropped } = count();
  assert.strictEqual(logged + dropped, 40, gcs.stderrText);
  assert.ok(dropped > 0 && logged <= 15, `logged ${logged}, dropped ${dropped}`);
  assert.strictEqual(await h.stopGcs(gcs), 0);
});
