// wss_echo.js - ws_echo.js over TLS: Node's https server with the 'ws'
// package on it, as ws's README shows wss (the same echo).
// usage: node wss_echo.js PORT ADDRESS CERT KEY     SIGTERM / SIGINT stop it.
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const [port, host, cert, key] = [Number(process.argv[2]), process.argv[3], process.argv[4], process.argv[5]];
if (!port || !cert || !key) {
  console.error('usage: node wss_echo.js PORT ADDRESS CERT KEY');
  process.exit(1);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.on('error', (e) => {
  console.error(`wss_echo: ${e.message}`);
  process.exit(1);
});
server.listen({ port, host, backlog: 511 });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
