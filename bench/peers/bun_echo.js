// bun_echo.js - a WebSocket echo server on Bun (uWebSockets inside, a
// JavaScript handler per message), as Bun's documentation shows it: every
// message is sent back as it came (binary stays binary). Run with bun.
// usage: bun bun_echo.js PORT [ADDRESS]        SIGTERM / SIGINT stop it.
const port = Number(process.argv[2]);
const hostname = process.argv[3] || '127.0.0.1';
if (!port) {
  console.error('usage: bun bun_echo.js PORT [ADDRESS]');
  process.exit(1);
}
Bun.serve({
  port,
  hostname,
  fetch(req, server) {
    if (server.upgrade(req)) return undefined;
    return new Response('WebSocket only', { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 16 * 1024 * 1024,
    backpressureLimit: 16 * 1024 * 1024,
    message(ws, message) {
      ws.send(message);
    },
  },
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
