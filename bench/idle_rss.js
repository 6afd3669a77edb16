#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Idle memory: start the server, open N idle sessions (hello.ok each), report the server's VmRSS from /proc.
//
// Usage: node bench/idle_rss.js [--binary PATH] [--sessions 1000] [--rooms 0] [--batch 50] [--timeout 120]
// With --rooms R > 0 every session also joins one of R rooms, for the cost of a membership.
'use strict';

const { findBinary, loadWs, parseArgs, rssKiB, startServer } = require('./bench_support');

const WebSocket = loadWs();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One idle session: upgrade, hello, optionally a join; resolves with the open socket.
function idleSession(url, room) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10000 });
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed with ${code} before the session was idle`)));
    ws.once('open', () => ws.send(JSON.stringify({ _tag: 'hello', clientVersion: '0.1.0' })));
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f._tag === 'hello.ok') {
        if (!room) return resolve(ws);
        ws.send(JSON.stringify({ _tag: 'tool.join_room', requestId: 'j', room }));
      } else if (f._tag === 'tool.ok' && f.requestId === 'j') {
        resolve(ws);
      } else if (f._tag === 'hello.err' || f._tag === 'tool.err') {
        reject(new Error(JSON.stringify(f)));
      }
    });
  });
}

async function main() {
  const o = parseArgs({ binary: '', sessions: 1000, rooms: 0, batch: 50, timeout: 120 });
  if (o.sessions < 1 || o.batch < 1) throw new Error('bad arguments');
  const server = await startServer(findBinary(o.binary), ['--max-connections', String(o.sessions + 10)]);
  const deadline = setTimeout(() => {
    console.error(`idle_rss: gave up after ${o.timeout} s`);
    server.proc.kill('SIGKILL');
    process.exit(1);
  }, o.timeout * 1000);
  const pid = server.proc.pid;

  await sleep(300);
  const baseline = rssKiB(pid);
  const sockets = [];
  for (let i = 0; i < o.sessions; i += o.batch) {
    const n = Math.min(o.batch, o.sessions - i);
    const batch = await Promise.all(
      Array.from({ length: n }, (_, j) => idleSession(server.url, o.rooms > 0 ? `room-${(i + j) % o.rooms}` : null)),
    );
    sockets.push(...batch);
  }
  await sleep(1000);  // let the allocator settle; nothing is sent meanwhile
  const loaded = rssKiB(pid);
  clearTimeout(deadline);

  const perSession = ((loaded - baseline) * 1024) / o.sessions;
  console.log(`idle_rss: ${o.sessions} idle sessions${o.rooms > 0 ? ` in ${o.rooms} rooms` : ''}`);
  console.log(`  VmRSS at start: ${(baseline / 1024).toFixed(1)} MiB`);
  console.log(`  VmRSS with ${o.sessions} sessions: ${(loaded / 1024).toFixed(1)} MiB`);
  console.log(`  per session: ${(perSession / 1024).toFixed(1)} KiB`);

  for (const ws of sockets) ws.terminate();
  await server.stop();
}

main().catch((e) => {
  console.error(`idle_rss: ${e.stack || e}`);
  process.exit(1);
});
