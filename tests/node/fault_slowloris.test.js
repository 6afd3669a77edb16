// SPDX-License-Identifier: MIT
// Fault matrix, slow-loris upgrades: a client that dribbles its HTTP upgrade one byte a second is cut at
// the handshake timeout with 408, however steadily it sends; a thousand of them at once do not hold up
// a normal client's hello (its latency is printed with and without them).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { eventually, metrics, session, startServer, withTimeout } = require('./harness');

const UPGRADE =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
  'X-Padding: ' + 'p'.repeat(200) + '\r\n\r\n';

// A loris: connects and sends UPGRADE one byte per `tick()`; records what it got back and when it closed.
function loris(port) {
  const l = { sock: net.connect(port, '127.0.0.1'), sent: 0, data: '', closedAt: null, openedAt: performance.now() };
  l.sock.setEncoding('latin1');
  l.sock.on('data', (d) => (l.data += d));
  l.sock.on('error', () => {});
  l.closed = new Promise((resolve) => l.sock.on('close', () => resolve((l.closedAt = performance.now()))));
  l.tick = () => {
    if (l.closedAt === null && l.sent < UPGRADE.length && l.sock.writable) l.sock.write(UPGRADE[l.sent++]);
  };
  return l;
}

async function helloLatencies(server, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const c = await session(server);
    out.push(performance.now() - t0);
    await c.close();
  }
  return out.sort((a, b) => a - b);
}

const fmt = (xs) => `p50 ${xs[Math.floor(xs.length / 2)].toFixed(1)} ms, max ${xs[xs.length - 1].toFixed(1)} ms over ${xs.length}`;

test('one byte a second: closed with 408 at the handshake timeout, not kept alive by its trickle', async (t) => {
  const server = await startServer(t, { args: ['--handshake-timeout', '2'] });
  const l = loris(server.port);
  t.after(() => l.sock.destroy());
  l.tick();
  const timer = setInterval(l.tick, 1000);
  t.after(() => clearInterval(timer));
  await withTimeout(l.closed, 10000, 'the server to cut the loris');
  clearInterval(timer);
  const after = (l.closedAt - l.openedAt) / 1000;
  assert.match(l.data, /^HTTP\/1\.1 408 /);
  assert.ok(l.sent < 10, `only ${l.sent} bytes were sent, the head was never complete`);
  assert.ok(after >= 1.5 && after < 6, `closed after ${after} s with --handshake-timeout 2`);
  assert.match(server.stderr, /handshake timeout/);
  console.log(`FIGURE slowloris_single_closed_after_s: ${after.toFixed(2)} (--handshake-timeout 2, ${l.sent} bytes sent)`);
});

test('1000 lorises at once do not delay a normal hello; all of them are cut at the timeout', { timeout: 120000 }, async (t) => {
  const server = await startServer(t, { args: ['--handshake-timeout', '6'] });
  const calm = await helloLatencies(server, 20);

  const lorises = [];
  t.after(() => lorises.forEach((l) => l.sock.destroy()));
  for (let i = 0; i < 1000; i++) lorises.push(loris(server.port));
  const timer = setInterval(() => lorises.forEach((l) => l.tick()), 1000);
  t.after(() => clearInterval(timer));
  lorises.forEach((l) => l.tick());
  // All of them accepted and trickling (the scrape counts itself).
  await eventually(async () => (await metrics(server.port)).parley_connections > 1000, 10000, '1000 lorises to be accepted');
  const busy = await helloLatencies(server, 20);

  const tStart = Math.min(...lorises.map((l) => l.openedAt));
  await withTimeout(Promise.all(lorises.map((l) => l.closed)), 30000, 'every loris to be cut');
  clearInterval(timer);
  const lasted = lorises.map((l) => (l.closedAt - l.openedAt) / 1000).sort((a, b) => a - b);
  const timedOut = lorises.filter((l) => /^HTTP\/1\.1 408 /.test(l.data)).length;
  console.log(`FIGURE slowloris_hello_latency_without: ${fmt(calm)}`);
  console.log(`FIGURE slowloris_hello_latency_with_1000: ${fmt(busy)}`);
  console.log(`FIGURE slowloris_1000_cut_after_s: min ${lasted[0].toFixed(2)} max ${lasted[lasted.length - 1].toFixed(2)} (--handshake-timeout 6), ${timedOut} with 408, all gone ${((performance.now() - tStart) / 1000).toFixed(1)} s after the first`);
  assert.equal(timedOut, 1000, 'each loris got a 408');
  assert.ok(lasted[0] >= 5, `a loris was cut after ${lasted[0]} s, before the timeout`);
  // Loose: a normal hello among 1000 lorises stays well under a second.
  assert.ok(busy[Math.floor(busy.length / 2)] < 1000, `hello p50 with lorises ${fmt(busy)}`);
  // The server still works afterwards.
  const c = await session(server);
  await c.close();
});
