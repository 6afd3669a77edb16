// SPDX-License-Identifier: MIT
// Server-side bounds: the connection cap (503), the handshake timeout, and the slow-consumer close 4008.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { connect, eventually, httpGet, metrics, session, startServer, withTimeout } = require('./harness');

test('--max-connections 2: the third connection gets HTTP 503, monitoring still answers; a freed slot is usable again', async (t) => {
  const server = await startServer(t, { args: ['--max-connections', '2'] });
  const a = await session(server);
  const b = await session(server);
  await assert.rejects(connect(server), /HTTP 503/);
  // A loopback scrape at the cap takes one of the reserved connections.
  const raw = await httpGet(server.port, '/healthz');
  assert.equal(raw.status, 200);
  const full = await metrics(server.port);
  assert.equal(full.parley_connections, 3);  // two sessions and the scrape itself
  await a.close();
  await eventually(async () => {
    try {
      const c = await session(server);
      await c.close();
      return true;
    } catch {
      return false;
    }
  }, 3000, 'the slot to free up');
  await b.close();
  const m = await metrics(server.port);
  assert.ok(m.parley_connections_refused_total >= 1, JSON.stringify(m));  // the upgrade at the cap
});

// Resolves with how long the server took to close a connection, and what it wrote first.
function watchClose(sock) {
  const started = Date.now();
  let data = '';
  sock.setEncoding('latin1');
  sock.on('data', (d) => {
    data += d;
  });
  sock.on('error', () => {});
  return withTimeout(
    new Promise((resolve) => sock.on('close', () => resolve({ ms: Date.now() - started, data }))),
    5000,
    'the server to close a silent connection',
  );
}

test('--handshake-timeout 1: a silent TCP connection is closed within about a second', async (t) => {
  const server = await startServer(t, { args: ['--handshake-timeout', '1'] });
  const sock = net.connect(server.port, '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise((resolve) => sock.once('connect', resolve));
  const { ms, data } = await watchClose(sock);
  assert.ok(ms >= 800 && ms < 2500, `closed after ${ms} ms`);
  assert.match(data, /^HTTP\/1\.1 408 /);
});

test('--handshake-timeout 1: an upgraded connection that sends no hello is closed with 1008', async (t) => {
  const server = await startServer(t, { args: ['--handshake-timeout', '1'] });
  const started = Date.now();
  const c = await connect(server);
  const { code } = await c.waitClose(4000);
  assert.equal(code, 1008);
  const ms = Date.now() - started;
  assert.ok(ms >= 800 && ms < 2500, `closed after ${ms} ms`);
  // A session that did say hello in time is not affected.
  const ok = await session(server);
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal(ok.closeInfo, null);
  await ok.close();
});

test('a recipient whose unwritten output passes --max-queue-bytes is closed with 4008 and can resume', async (t) => {
  const server = await startServer(t, { args: ['--max-queue-bytes', '1000'] });
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await alice.sendMessage('r', 'small');
  assert.equal((await bob.message('r')).body, 'small');
  const big = 'B'.repeat(2000);
  await alice.sendMessage('r', big);
  assert.equal((await bob.waitClose()).code, 4008);
  assert.equal((await metrics(server.port)).parley_slow_consumer_closes_total, 1);
  // Nothing was lost: the message waits in the replay ring for the resume.
  const back = await session(server, {
    resume: { sessionId: bob.session.sessionId, reconnectToken: bob.session.reconnectToken, lastAckedSeqByRoom: { r: 1 } },
  });
  const m = await back.message('r');
  assert.deepEqual([m.seq, m.body], [2, big]);
  // The sender is unaffected.
  assert.equal(alice.closeInfo, null);
  for (const c of [alice, back]) await c.close();
});
