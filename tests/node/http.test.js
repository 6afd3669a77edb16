// SPDX-License-Identifier: MIT
// The plain HTTP routes beside the upgrade: the page, /healthz, /metrics, 404, 405 and 426, and the headers on all.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { httpGet, httpRequest, metrics, session, startServer } = require('./harness');

test('GET /healthz is 200 ok; HEAD has no body; POST is 405', async (t) => {
  const server = await startServer(t);
  const r = await httpGet(server.port, '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok\n');
  assert.match(r.headers['content-type'], /^text\/plain/);
  const head = await httpRequest(server.port, 'HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  const post = await httpRequest(server.port, 'POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('GET /metrics is Prometheus text whose numbers follow the traffic', async (t) => {
  const server = await startServer(t);
  const r = await httpGet(server.port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const names = [
    'connections', 'sessions', 'rooms', 'memberships', 'messages_total', 'deliveries_total', 'rate_limited_total',
    'replay_overflows_total', 'slow_consumer_closes_total', 'bytes_in_total', 'bytes_out_total',
  ];
  for (const name of names) {
    assert.match(r.body, new RegExp(`^# HELP parley_${name} `, 'm'));
    assert.match(r.body, new RegExp(`^# TYPE parley_${name} (gauge|counter)$`, 'm'));
    assert.match(r.body, new RegExp(`^parley_${name} \\d+$`, 'm'));
  }
  const before = await metrics(server.port);
  assert.equal(before.parley_sessions, 0);
  assert.equal(before.parley_messages_total, 0);

  const a = await session(server);
  const b = await session(server);
  const c = await session(server);
  for (const x of [a, b, c]) await x.join('m', undefined);
  await b.join('n');
  await a.sendMessage('m', 'hello');
  await c.message('m');
  await b.message('m');
  const after = await metrics(server.port);
  // The scrape's own connection counts too.
  assert.equal(after.parley_connections, 4);
  assert.equal(after.parley_sessions, 3);
  assert.equal(after.parley_rooms, 2);
  assert.equal(after.parley_memberships, 4);
  assert.equal(after.parley_messages_total, 1);
  assert.equal(after.parley_deliveries_total, 2);
  assert.ok(after.parley_bytes_in_total > before.parley_bytes_in_total);
  assert.ok(after.parley_bytes_out_total > before.parley_bytes_out_total);
  for (const x of [a, b, c]) await x.close();
});

test('unknown paths are 404, GET / without an upgrade is the page, a malformed head is 400', async (t) => {
  const server = await startServer(t);
  assert.equal((await httpGet(server.port, '/nope')).status, 404);
  assert.equal((await httpGet(server.port, '/healthz/x')).status, 404);
  const page = await httpGet(server.port, '/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal((await httpGet(server.port, '/?room=lobby&nickname=ann')).status, 200);
  assert.equal((await httpRequest(server.port, 'GARBAGE\r\n\r\n')).status, 400);
  // An upgrade on another path is 404, not a WebSocket.
  const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
  assert.equal((await httpGet(server.port, '/chat', upgrade)).status, 404);
  assert.equal((await httpGet(server.port, '/', upgrade.replace('13', '8'))).status, 426);
});

test('the page and every other answer carry the CSP, nosniff and no-referrer; each web/ file is served from the binary', async (t) => {
  const server = await startServer(t);
  const web = path.join(__dirname, '..', '..', 'web');
  for (const name of fs.readdirSync(web)) {
    const answer = await httpGet(server.port, name === 'index.html' ? '/' : `/${name}`);
    assert.equal(answer.status, 200, name);
    assert.equal(answer.body, fs.readFileSync(path.join(web, name), 'utf8'), `${name} is served byte for byte`);
  }
  for (const target of ['/', '/nope', '/healthz', '/session']) {
    const answer = await httpRequest(server.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
    const csp = answer.headers['content-security-policy'];
    assert.match(csp, /default-src 'self'/, target);
    assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${server.port};`), target);
    assert.match(csp, /frame-ancestors 'none'/, target);
    assert.doesNotMatch(csp, /unsafe/, target);
    assert.equal(answer.headers['x-content-type-options'], 'nosniff', target);
    assert.equal(answer.headers['referrer-policy'], 'no-referrer', target);
  }
});
