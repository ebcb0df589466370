#!/usr/bin/env node
// Baseline for the orchestrator-scale relay: the cheapest possible websocket
// hop. `relay`: forwards every frame from producer socket /p/<i> to consumer
// socket /c/<i> as is (no parsing). `produce`: opens M producer sockets and, on
// {type:'go', count, bytes}, sends `count` frames per socket shaped like Tether's
// stream events (stamped with process.hrtime.bigint()), in batches, pausing on
// bufferedAmount like the worker does. Both are forked with IPC.
import { WebSocketServer, WebSocket } from 'ws';

const mode = process.argv[2];

if (mode === 'relay') {
  const producers = new Map();
  const consumers = new Map();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  wss.on('connection', (ws, req) => {
    const [, kind, id] = req.url.split('/');
    if (kind === 'c') consumers.set(id, ws);
    else {
      producers.set(id, ws);
      ws.on('message', (data, isBinary) => {
        const c = consumers.get(id);
        if (!c) return;
        c.send(data, { binary: isBinary });
        // Backpressure the same way the orchestrator does: stop reading a producer whose consumer is behind.
        if (c.bufferedAmount > 1024 * 1024) {
          ws.pause();
          const t = setInterval(() => { if (c.bufferedAmount < 256 * 1024) { clearInterval(t); ws.resume(); } }, 5);
        }
      });
    }
  });
  wss.on('listening', () => process.send({ type: 'ready', port: wss.address().port, pid: process.pid }));
  process.on('disconnect', () => process.exit(0));
} else if (mode === 'produce') {
  const sockets = [];
  process.on('message', async (m) => {
    if (m.type === 'connect') {
      for (let i = 0; i < m.sockets; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${m.port}/p/${i}`, { perMessageDeflate: false });
        await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
        sockets.push(ws);
      }
      process.send({ type: 'connected' });
    } else if (m.type === 'go') {
      const batch = 16;
      const prefix = '{"type":"stream","requestId":"r1","name":"stdout","text":"';
      for (const ws of sockets) {
        let left = m.count;
        const pump = () => {
          if (ws.bufferedAmount > 8 * 1024 * 1024) { setTimeout(pump, 2); return; }
          for (let i = 0; i < batch && left > 0; i++, left--) {
            ws.send(`${prefix}${`@${process.hrtime.bigint()};`.padEnd(m.bytes, 'x')}"}`);
          }
          if (left > 0) setImmediate(pump);
          else ws.send('{"type":"done","requestId":"r1","status":"ok"}');
        };
        setImmediate(pump);
      }
    }
  });
  process.on('disconnect', () => process.exit(0));
}
