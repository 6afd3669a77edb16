// SPDX-License-Identifier: MIT
// The upgrade and the hello: hello.ok's fields, refusals with their close codes, and binary frames read as JSON.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, session, startServer } = require('./harness');

test('hello gets hello.ok with a session id, a reconnect token and the server version', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  assert.match(c.session.sessionId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(c.session.reconnectToken.length >= 32, c.session.reconnectToken);
  assert.equal(c.session.serverVersion, '0.1.0');
  const other = await session(server);
  assert.notEqual(other.session.sessionId, c.session.sessionId);
  assert.notEqual(other.session.reconnectToken, c.session.reconnectToken);
  await c.close();
  await other.close();
});

test('a client of another major version gets VersionMismatchError and close 4004', async (t) => {
  const server = await startServer(t);
  const c = await connect(server);
  const h = await c.hello({ clientVersion: '9.0.0' });
  assert.equal(h._tag, 'hello.err');
  assert.equal(h.code, 'VersionMismatchError');
  assert.equal((await c.waitClose()).code, 4004);
});

test('a first frame that is not a hello gets BadHandshakeFrameError and close 1002', async (t) => {
  const server = await startServer(t);
  for (const frame of [
    { _tag: 'tool.list_rooms', requestId: 'r1' },
    { _tag: 'hello' },  // clientVersion missing
    'not json',
  ]) {
    const c = await connect(server);
    c.send(frame);
    const h = await c.nextTagged('hello.err');
    assert.equal(h.code, 'BadHandshakeFrameError');
    assert.equal(typeof h.message, 'string');
    assert.equal((await c.waitClose()).code, 1002);
  }
});

test('binary frames are read as UTF-8 JSON, like text frames', async (t) => {
  const server = await startServer(t);
  const c = await connect(server);
  c.ws.send(Buffer.from(JSON.stringify({ _tag: 'hello', clientVersion: '0.1.0' })), { binary: true });
  assert.equal((await c.nextTagged('hello.ok'))._tag, 'hello.ok');
  c.ws.send(Buffer.from(JSON.stringify({ _tag: 'tool.list_rooms', requestId: 'b1' })), { binary: true });
  const answer = await c.nextTagged('tool.ok');
  assert.equal(answer.requestId, 'b1');
  assert.deepEqual(answer.result, { joined: [], available: [] });
  await c.close();
});

test('after hello, a frame that cannot be read gets system.error BadFrameError and the connection stays', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  c.send('{not json');
  let e = await c.nextTagged('system.error');
  assert.equal(e.code, 'BadFrameError');
  c.send({ _tag: 'no.such.frame' });
  e = await c.nextTagged('system.error');
  assert.equal(e.code, 'BadFrameError');
  c.send({ _tag: 'tool.join_room', room: 'x' });  // no requestId: nothing to answer under
  e = await c.nextTagged('system.error');
  assert.equal(e.code, 'BadFrameError');
  // A bad argument under a readable requestId is a tool.err, not a system.error.
  const bad = await c.call('tool.join_room', { room: 42 });
  assert.equal(bad._tag, 'tool.err');
  assert.equal(bad.code, 'InvalidArgumentError');
  assert.deepEqual(bad.details, { field: 'room', rule: 'type string' });
  assert.deepEqual(await c.ok('tool.list_rooms'), { joined: [], available: [] });
  await c.close();
});
