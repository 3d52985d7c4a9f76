// uws_chat.js - the chat rooms of scripts/chat.lua on uWebSockets.js, with
// its pub/sub (a room is a topic; app.publish sends one message to every
// subscriber, the sender too), for the room-broadcast row.
// Same wire protocol as bench/chat_native.c for what the benchmark uses:
// connect with ?room=ROOM&name=NAME; every text message goes to the room as
// "NAME: TEXT"; "* NAME joined" on connect.
// usage: node uws_chat.js PORT [ADDRESS]        SIGTERM / SIGINT stop it.
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!port) {
  console.error('usage: node uws_chat.js PORT [ADDRESS]');
  process.exit(1);
}
const app = uWS.App();
app
  .ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    maxBackpressure: 16 * 1024 * 1024,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      const q = new URLSearchParams(req.getQuery() || '');
      res.upgrade({ room: q.get('room') || 'lobby', name: q.get('name') || 'anon' },
        req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const d = ws.getUserData();
      ws.subscribe(d.room);
      app.publish(d.room, `* ${d.name} joined`, false);
    },
    message: (ws, message) => {
      const d = ws.getUserData();
      app.publish(d.room, `${d.name}: ${Buffer.from(message).toString('latin1')}`, false);
    },
  })
  .listen(host, port, (token) => {
    if (!token) {
      console.error(`uws_chat: cannot listen on ${host}:${port}`);
      process.exit(1);
    }
  });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
