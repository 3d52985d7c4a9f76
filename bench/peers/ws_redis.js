// ws_redis.js - the peer of gcs + bench/redis_incr.lua: a Node 'ws' server
// whose message handler awaits one Redis INCR, then echoes (the usual
// async/await game-server handler). Redis is spoken by a minimal
// pipelining RESP client over one socket (what node-redis and ioredis do
// too: commands written as they come, replies matched in order), so the
// comparison needs no package beyond 'ws'.
// usage: node ws_redis.js PORT REDIS_PORT [ADDRESS]     SIGTERM / SIGINT stop it.
'use strict';
const net = require('net');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const redisPort = Number(process.argv[3]);
const host = process.argv[4] || '127.0.0.1';
if (!port || !redisPort) {
  console.error('usage: node ws_redis.js PORT REDIS_PORT [ADDRESS]');
  process.exit(1);
}

// One connection, commands pipelined: each call's resolver waits in order.
const waiting = [];
let buf = Buffer.alloc(0);
const redis = net.connect(redisPort, '127.0.0.1');
redis.setNoDelay(true);
redis.on('data', (d) => {
  buf = buf.length ? Buffer.concat([buf, d]) : d;
  let off = 0;
  for (;;) { // integer (":N") and error ("-ERR") replies: one line each
    const nl = buf.indexOf(13, off);
    if (nl < 0 || nl + 1 >= buf.length) break;
    const line = buf.toString('latin1', off, nl);
    off = nl + 2;
    const w = waiting.shift();
    if (line[0] === ':') w.resolve(Number(line.slice(1)));
    else w.reject(new Error(line.slice(1)));
  }
  buf = buf.subarray(off);
});
redis.on('error', (e) => {
  console.error(`ws_redis: redis: ${e.message}`);
  process.exit(1);
});
function incr(key) {
  return new Promise((resolve, reject) => {
    waiting.push({ resolve, reject });
    redis.write(`*2\r\n$4\r\nINCR\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
  });
}

const wss = new WebSocketServer({ port, host, perMessageDeflate: false, backlog: 511 });
wss.on('connection', (ws) => {
  ws.on('message', async (data, isBinary) => {
    await incr('bench:incr');
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});
wss.on('error', (e) => {
  console.error(`ws_redis: ${e.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
