// SPDX-License-Identifier: MIT
// TLS: a self-signed certificate, --tls-cert/--tls-key, wss:// and hello.ok.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');
const { connect, session, startServer, tempDir, withTimeout } = require('./harness');

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { timeout: 10000 }).status === 0;

function selfSigned(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
    { encoding: 'utf8', timeout: 20000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return { cert, key };
}

test('wss:// with a self-signed certificate gets hello.ok; /healthz answers over TLS', { skip: !HAVE_OPENSSL && 'no openssl' }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = selfSigned(dir);
  const server = await startServer(t, { dir, args: ['--tls-cert', cert, '--tls-key', key] });
  assert.equal(server.scheme, 'wss');
  const ca = fs.readFileSync(cert);

  const alice = await session(server, {}, { ca });  // verified against the certificate itself
  const bob = await session(server, {}, { rejectUnauthorized: false });
  await alice.join('secure', 'alice');
  await bob.join('secure', 'bob');
  await alice.sendMessage('secure', 'over TLS');
  assert.equal((await bob.message('secure')).body, 'over TLS');

  // Without the CA the client refuses the server, as it should.
  await assert.rejects(connect(server), /self.signed|certificate/i);

  const health = await withTimeout(
    new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: server.port, path: '/healthz', ca }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        })
        .on('error', reject);
    }),
    5000,
    'GET /healthz over TLS',
  );
  assert.deepEqual(health, { status: 200, body: 'ok\n' });
  for (const c of [alice, bob]) await c.close();
});

test('a plain ws:// client on the TLS port gets no session', { skip: !HAVE_OPENSSL && 'no openssl' }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = selfSigned(dir);
  const server = await startServer(t, { dir, args: ['--tls-cert', cert, '--tls-key', key] });
  await assert.rejects(connect(`ws://127.0.0.1:${server.port}/`));
});

test('on a TLS listener a silent TCP connection is closed at the handshake timeout, and the cap sends no plaintext', { skip: !HAVE_OPENSSL && 'no openssl' }, async (t) => {
  const dir = tempDir(t);
  const { cert, key } = selfSigned(dir);
  const server = await startServer(t, {
    dir, args: ['--tls-cert', cert, '--tls-key', key, '--handshake-timeout', '1', '--max-connections', '2'],
  });
  // Silent sockets that never start TLS fill the server and its monitoring reserve (8).
  const started = Date.now();
  const silent = await Promise.all(Array.from({ length: 10 }, () => new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    s.closedAfter = new Promise((done) => s.once('close', () => done(Date.now() - started)));
    s.once('connect', () => resolve(s));
  })));
  t.after(() => silent.forEach((s) => s.destroy()));
  // One more is refused at the cap: a TLS client must see the connection close, never HTTP in plaintext.
  const refusedAt = Date.now();
  const third = await new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('error', () => {});
    s.on('close', () => resolve(data));
  });
  assert.equal(third, '');
  assert.ok(Date.now() - refusedAt < 800, 'the refusal came at once');
  // The silent ones are cut at the handshake timeout plus the close linger, not left open for ever.
  for (const s of silent) {
    const ms = await withTimeout(s.closedAfter, 6000, 'the server to close a silent TLS socket');
    assert.ok(ms >= 800 && ms < 4500, `closed after ${ms} ms`);
  }
  // With them gone a real client gets in.
  const c = await session(server, {}, { rejectUnauthorized: false });
  await c.close();
});
