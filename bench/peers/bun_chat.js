// bun_chat.js - the chat rooms of scripts/chat.lua on Bun, with uWebSockets's
// pub/sub (a room is a topic; server.publish sends one message to every
// subscriber, the sender too), for the room-broadcast row.
// Same wire protocol as bench/chat_native.c for what the benchmark uses:
// connect with ?room=ROOM&name=NAME; every text message goes to the room as
// "NAME: TEXT"; "* NAME joined" on connect.
// usage: bun bun_chat.js PORT [ADDRESS]        SIGTERM / SIGINT stop it.
const port = Number(process.argv[2]);
const hostname = process.argv[3] || '127.0.0.1';
if (!port) {
  console.error('usage: bun bun_chat.js PORT [ADDRESS]');
  process.exit(1);
}
const server = Bun.serve({
  port,
  hostname,
  fetch(req, srv) {
    const q = new URL(req.url).searchParams;
    const data = { room: q.get('room') || 'lobby', name: q.get('name') || 'anon' };
    if (srv.upgrade(req, { data })) return undefined;
    return new Response('WebSocket only', { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 16 * 1024 * 1024,
    backpressureLimit: 16 * 1024 * 1024,
    open(ws) {
      ws.subscribe(ws.data.room);
      server.publish(ws.data.room, `* ${ws.data.name} joined`);
    },
    message(ws, message) {
      server.publish(ws.data.room, `${ws.data.name}: ${message}`);
    },
  },
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
