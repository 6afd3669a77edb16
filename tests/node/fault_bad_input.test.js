// SPDX-License-Identifier: MIT
// Fault matrix, bad input at every layer: each bad frame gets one clear error and changes nothing else.
// handshake.test.js already covers a tool frame / a hello without clientVersion / not-JSON as the first
// frame, and BadFrameError for not-JSON, an unknown _tag and a missing requestId after hello;
// frames.test.js the WebSocket layer; sessions.test.js a made-up reconnect token. This file adds the rest:
// a second hello, every field of every frame with the wrong JSON type, oversized requestIds, acks for a
// future seq and for a room not joined, and a resume with another session's reconnect token.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, metrics, session, startServer } = require('./harness');

// What "nothing else changed" means: the same rooms, members and counters, and the connection is still
// usable (its next call is answered under its own requestId).
async function snapshot(server, c, room) {
  const m = await metrics(server.port);
  return {
    rooms: await c.ok('tool.list_rooms'),
    who: await c.ok('tool.who_is_here', { room }),
    messages: m.parley_messages_total,
    sessions: m.parley_sessions,
    memberships: m.parley_memberships,
  };
}

// Wrong JSON types: every value below is sent in place of each field, except one of the field's own type.
const WRONG = { string: [42, true, null, ['x'], { a: 1 }], integer: ['7', 1.5, -1, true, null, [], {}], object: ['x', 1, [], null] };

test('hello first: a second hello, and a hello with each field of the wrong type', async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  await a.join('lobby', 'alice');
  const before = await snapshot(server, a, 'lobby');

  // A second hello on a live session is an unknown frame after hello: system.error, the connection stays.
  a.send({ _tag: 'hello', clientVersion: '0.1.0' });
  const e = await a.nextTagged('system.error');
  assert.equal(e.code, 'BadFrameError');
  assert.equal(typeof e.message, 'string');
  assert.ok(!a.frames.some((f) => f._tag === 'hello.ok'), 'no second session');
  assert.deepEqual(await snapshot(server, a, 'lobby'), before);

  // Each hello field with a wrong type: BadHandshakeFrameError naming the problem, close 1002, no session.
  const valid = { _tag: 'hello', clientVersion: '0.1.0' };
  const resume = { sessionId: a.session.sessionId, reconnectToken: a.session.reconnectToken, lastAckedSeqByRoom: {} };
  const cases = [];
  for (const v of WRONG.string) cases.push({ ...valid, clientVersion: v });
  for (const v of WRONG.string.filter((x) => x !== null)) cases.push({ ...valid, authToken: v });
  for (const v of WRONG.object.filter((x) => x !== null)) cases.push({ ...valid, resume: v });
  for (const v of WRONG.string) cases.push({ ...valid, resume: { ...resume, sessionId: v } });
  for (const v of WRONG.string) cases.push({ ...valid, resume: { ...resume, reconnectToken: v } });
  for (const v of WRONG.object) cases.push({ ...valid, resume: { ...resume, lastAckedSeqByRoom: v } });
  for (const v of WRONG.integer) cases.push({ ...valid, resume: { ...resume, lastAckedSeqByRoom: { lobby: v } } });
  cases.push({ ...valid, resume: { ...resume, lastAckedSeqByRoom: { lobby: 2 ** 53 } } });
  cases.push({ ...valid, resume: { ...resume, lastAckedSeqByRoom: { 'Not A Slug': 0 } } });
  cases.push({ ...valid, _tag: 7 });
  cases.push({ _tag: 'ack', room: 'lobby', seq: 1 });  // an ack before hello
  cases.push([valid]);
  for (const frame of cases) {
    const c = await connect(server);
    c.send(frame);
    const h = await c.next(() => true, 5000, `an answer to ${JSON.stringify(frame)}`);
    assert.equal(h._tag, 'hello.err', JSON.stringify(frame));
    assert.equal(h.code, 'BadHandshakeFrameError', `${JSON.stringify(frame)} → ${JSON.stringify(h)}`);
    assert.ok(h.message.length > 0);
    assert.equal((await c.waitClose()).code, 1002, JSON.stringify(frame));
    assert.equal(c.frames.length, 0, `nothing after the hello.err: ${JSON.stringify(c.frames)}`);
  }
  console.log(`FIGURE bad_hello_frames_refused: ${cases.length}`);
  // The session the resumes named is unharmed and was never taken over.
  assert.equal(a.closeInfo, null);
  assert.deepEqual(await snapshot(server, a, 'lobby'), before);
  await a.close();
});

test('every field of every tool frame with the wrong JSON type is InvalidArgumentError naming it', async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  const b = await session(server);
  await a.join('lobby', 'alice');
  await b.join('lobby', 'bob');
  const before = await snapshot(server, a, 'lobby');
  const good = {
    'tool.join_room': { room: 'lobby', nickname: 'alice' },
    'tool.leave_room': { room: 'lobby' },
    'tool.list_rooms': {},
    'tool.send_message': { room: 'lobby', body: 'hi', clientMsgId: 'k1' },
    'tool.who_is_here': { room: 'lobby' },
  };
  let n = 0;
  for (const [tag, fields] of Object.entries(good)) {
    for (const field of Object.keys(fields)) {
      for (const v of WRONG.string) {
        // null for an optional field may be read as absent; anything else must be refused.
        const optional = field === 'nickname' || field === 'clientMsgId';
        const r = await a.call(tag, { ...fields, [field]: v });
        if (optional && v === null && r._tag === 'tool.ok') continue;
        assert.equal(r._tag, 'tool.err', `${tag} ${field}=${JSON.stringify(v)} → ${JSON.stringify(r)}`);
        assert.equal(r.code, 'InvalidArgumentError', `${tag} ${field}=${JSON.stringify(v)} → ${JSON.stringify(r)}`);
        assert.equal(r.details.field, field, JSON.stringify(r));
        assert.match(r.details.rule, /type string/, JSON.stringify(r));
        n++;
      }
    }
  }
  // requestId with the wrong type: nothing to answer under, so system.error.
  for (const v of WRONG.string) {
    a.send({ _tag: 'tool.list_rooms', requestId: v });
    const e = await a.nextTagged('system.error');
    assert.equal(e.code, 'BadFrameError', `requestId=${JSON.stringify(v)} → ${JSON.stringify(e)}`);
    n++;
  }
  console.log(`FIGURE bad_tool_frames_refused: ${n}`);
  assert.ok(!b.frames.some((f) => f._tag === 'room.message'), `no message went out: ${JSON.stringify(b.frames)}`);
  assert.deepEqual(await snapshot(server, a, 'lobby'), before);
  for (const c of [a, b]) await c.close();
});

test('requestIds: 128 characters are echoed, 129 and a megabyte-sized one are system.error', async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  const id128 = 'r'.repeat(128);
  a.send({ _tag: 'tool.list_rooms', requestId: id128 });
  const ok = await a.nextTagged('tool.ok');
  assert.equal(ok.requestId, id128);
  for (const id of ['r'.repeat(129), 'x'.repeat(60000)]) {
    a.send({ _tag: 'tool.join_room', requestId: id, room: 'lobby' });
    const e = await a.nextTagged('system.error');
    assert.equal(e.code, 'BadFrameError');
    assert.ok(JSON.stringify(e).length < 1000, 'the error does not echo the oversized id');
  }
  // Neither join happened.
  assert.deepEqual(await a.ok('tool.list_rooms'), { joined: [], available: [] });
  await a.close();
});

test('acks: a future seq is InvalidArgumentError and acks nothing; a room not joined and wrong types change nothing', async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  const b = await session(server);
  await a.join('lobby', 'alice');
  await b.join('lobby', 'bob');
  await a.ok('tool.join_room', { room: 'other' });
  for (let i = 1; i <= 3; i++) await a.sendMessage('lobby', `m${i}`);
  for (let i = 1; i <= 3; i++) assert.equal((await b.message('lobby')).seq, i);
  b.send({ _tag: 'ack', room: 'lobby', seq: 1 });

  // A future seq: refused, and the earlier ack stands (the resume below replays 2 and 3).
  b.send({ _tag: 'ack', room: 'lobby', seq: 4 });
  let e = await b.nextTagged('system.error');
  assert.equal(e.code, 'InvalidArgumentError');
  assert.match(e.message, /seq/);
  assert.deepEqual(e.details, { field: 'seq', rule: "at most the room's latest seq" });
  b.send({ _tag: 'ack', room: 'lobby', seq: 2 ** 53 - 1 });
  e = await b.nextTagged('system.error');
  assert.equal(e.code, 'InvalidArgumentError');

  // A room not joined (it exists) and one that does not exist: ignored, no answer.
  b.send({ _tag: 'ack', room: 'other', seq: 0 });
  b.send({ _tag: 'ack', room: 'nowhere', seq: 5 });
  // Wrong types: BadFrameError each.
  const bad = [
    { room: 42, seq: 1 }, { room: null, seq: 1 }, { seq: 1 }, { room: 'lobby' },
    ...WRONG.integer.map((seq) => ({ room: 'lobby', seq })), { room: 'lobby', seq: 2 ** 53 },
  ];
  for (const f of bad) {
    b.send({ _tag: 'ack', ...f });
    e = await b.nextTagged('system.error');
    assert.equal(e.code, 'BadFrameError', `${JSON.stringify(f)} → ${JSON.stringify(e)}`);
  }
  // The ignored acks produced nothing: the next frame is the answer to this call.
  const list = await b.ok('tool.list_rooms');
  assert.deepEqual(list.joined.map((r) => r.name), ['lobby']);
  assert.equal(b.frames.length, 0, JSON.stringify(b.frames));
  console.log(`FIGURE bad_acks_refused: ${bad.length + 2}`);

  // Drop and resume naming no ack: the server's record is seq 1, so 2 and 3 come again.
  await b.terminate();
  const back = await session(server, {
    resume: { sessionId: b.session.sessionId, reconnectToken: b.session.reconnectToken, lastAckedSeqByRoom: {} },
  });
  assert.deepEqual([(await back.message('lobby')).seq, (await back.message('lobby')).seq], [2, 3]);
  for (const c of [a, back]) await c.close();
});

test("a resume with another session's reconnect token is BadReconnectTokenError; both sessions are unharmed", async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  const b = await session(server);
  await a.join('lobby', 'alice');
  await b.join('lobby', 'bob');
  await b.terminate();
  const thief = await connect(server);
  const h = await thief.hello({
    resume: { sessionId: b.session.sessionId, reconnectToken: a.session.reconnectToken, lastAckedSeqByRoom: {} },
  });
  assert.equal(h._tag, 'hello.err');
  assert.equal(h.code, 'BadReconnectTokenError');
  assert.equal((await thief.waitClose()).code, 4002);
  // a's live connection was not taken over, b still resumes with its own token.
  assert.equal(a.closeInfo, null);
  const back = await session(server, {
    resume: { sessionId: b.session.sessionId, reconnectToken: b.session.reconnectToken, lastAckedSeqByRoom: {} },
  });
  assert.deepEqual((await back.ok('tool.who_is_here', { room: 'lobby' })).nicknames, ['alice', 'bob']);
  await a.sendMessage('lobby', 'still here');
  assert.equal((await back.message('lobby')).body, 'still here');
  for (const c of [a, back]) await c.close();
});
