// SPDX-License-Identifier: MIT
//
// tests/bench/socketio-server.mjs - the Socket.IO 4.8 peer of `make bench`:
// the smallest Socket.IO server that does what the bench asks of crier and
// nchan, so that tests/bench/loadgen.c can drive it with the same load.
//
//   subscribe  a WebSocket to /socket.io/?EIO=4&transport=websocket&room=R
//              (WebSocket transport only, no HTTP long-polling upgrade); the
//              server joins the socket to room R on connection, so the client
//              only sends the namespace connect ("40")
//   publish    POST /pub/R with a JSON body (at most 1 MiB) -> one event
//              io.to(R).emit("msg", body) and 201; 400 on a body that is not
//              JSON, 413 past 1 MiB
//   health     GET /healthz -> 200
//
// Usage: node tests/bench/socketio-server.mjs PORT   (listens on 127.0.0.1)
// No compression (perMessageDeflate off), as crier and nchan send plain
// frames. One Node process: one event loop, one core.

import http from 'node:http';
import { Server } from 'socket.io';

const PORT = Number(process.argv[2] || process.env.PORT || 0);
const BODY_MAX = 1 << 20;

function publish(req, res, room) {
  const parts = [];
  let size = 0;
  req.on('data', (d) => {
    size += d.length;
    if (size <= BODY_MAX) parts.push(d);
  });
  req.on('end', () => {
    if (size > BODY_MAX) {
      res.writeHead(413, { 'Content-Type': 'application/json' });
      res.end('{"error":"body too large"}');
      return;
    }
    let msg;
    try {
      msg = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end('{"error":"body is not JSON"}');
      return;
    }
    io.to(room).emit('msg', msg);
    res.writeHead(201, { 'Content-Length': '0' });
    res.end();
  });
}

const server = http.createServer((req, res) => {
  const url = req.url || '/';
  if (req.method === 'GET' && url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  const m = /^\/pub\/([^/?]+)$/.exec(url);
  if (req.method === 'POST' && m) {
    publish(req, res, decodeURIComponent(m[1]));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end('{"error":"not found"}');
});

const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: BODY_MAX,
});

io.on('connection', (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === 'string' && room) socket.join(room);
});

server.listen(PORT, '127.0.0.1', () => {
  process.stderr.write(`socketio-server: 127.0.0.1:${server.address().port}\n`);
});

const stop = () => {
  io.close();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
