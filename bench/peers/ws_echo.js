// ws_echo.js - a WebSocket echo server on Node's 'ws' package (what Colyseus
// and most JavaScript game servers run on), as its README shows it:
// every message is sent back as it came (binary stays binary).
// usage: node ws_echo.js PORT [ADDRESS]        SIGTERM / SIGINT stop it.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!port) {
  console.error('usage: node ws_echo.js PORT [ADDRESS]');
  process.exit(1);
}
const wss = new WebSocketServer({ port, host, perMessageDeflate: false, backlog: 511 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('error', (e) => {
  console.error(`ws_echo: ${e.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
