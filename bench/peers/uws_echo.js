// uws_echo.js - a WebSocket echo server on uWebSockets.js (uWebSockets, C++,
// with a JavaScript handler per message; npm @trufflesuite/uws-js-unofficial
// ships its binaries), as its examples show it: every message is sent back
// as it came (binary stays binary).
// usage: node uws_echo.js PORT [ADDRESS]        SIGTERM / SIGINT stop it.
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!port) {
  console.error('usage: node uws_echo.js PORT [ADDRESS]');
  process.exit(1);
}
uWS.App()
  .ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    maxBackpressure: 16 * 1024 * 1024,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .listen(host, port, (token) => {
    if (!token) {
      console.error(`uws_echo: cannot listen on ${host}:${port}`);
      process.exit(1);
    }
  });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
