// SPDX-License-Identifier: MIT
// SIGTERM: every connection is closed with 1001 and the process exits 0 within 2 s.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { connect, session, startServer, withTimeout } = require('./harness');

test('SIGTERM closes every connection with 1001 and exits 0 quickly', async (t) => {
  const server = await startServer(t);
  const clients = [];
  for (let i = 0; i < 5; i++) clients.push(await session(server));
  await clients[0].join('r', 'a');
  await clients[1].join('r', 'b');
  const waiting = await connect(server);  // upgraded, no hello yet
  const idle = net.connect(server.port, '127.0.0.1');  // not even HTTP yet
  t.after(() => idle.destroy());
  await new Promise((resolve) => idle.once('connect', resolve));
  let idleGot = '';
  idle.setEncoding('latin1');
  idle.on('data', (d) => {
    idleGot += d;
  });
  const idleClosed = new Promise((resolve) => idle.on('close', resolve));
  idle.on('error', () => {});

  const started = Date.now();
  server.proc.kill('SIGTERM');
  const exit = await withTimeout(server.exit, 2500, 'the server to exit after SIGTERM');
  const ms = Date.now() - started;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.ok(ms < 2000, `exit took ${ms} ms`);
  for (const c of [...clients, waiting]) assert.equal((await c.waitClose(2000)).code, 1001);
  await withTimeout(idleClosed, 2000, 'the raw connection to close');
  assert.match(idleGot, /^HTTP\/1\.1 503 /);
  assert.match(server.stderr, /SIGTERM/);
});

test('SIGTERM with no connections exits 0 at once', async (t) => {
  const server = await startServer(t);
  const started = Date.now();
  server.proc.kill('SIGTERM');
  assert.deepEqual(await withTimeout(server.exit, 2500, 'the server to exit'), { code: 0, signal: null });
  assert.ok(Date.now() - started < 1000);
});
