// SPDX-License-Identifier: MIT
// Sessions across connections: drop and resume with exact replay, a 1000 close, the refusals 4001-4003, takeover 4009, grace expiry.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, eventually, metrics, session, startServer } = require('./harness');

function resumeOf(c, lastAckedSeqByRoom) {
  return { resume: { sessionId: c.session.sessionId, reconnectToken: c.session.reconnectToken, lastAckedSeqByRoom } };
}

test('an abrupt drop keeps the session; resume replays exactly the unacked messages, then live ones', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await alice.join('s', 'alice');
  await bob.join('r', 'bob');
  await bob.join('s', 'bob');
  for (const body of ['1', '2', '3']) await alice.sendMessage('r', body);
  for (let i = 1; i <= 3; i++) assert.equal((await bob.message('r')).seq, i);
  bob.send({ _tag: 'ack', room: 'r', seq: 2 });
  await bob.ok('tool.list_rooms');  // the ack is processed before this answer

  await bob.terminate();  // no close frame
  // Still a member during the grace period.
  assert.deepEqual((await alice.ok('tool.who_is_here', { room: 'r' })).nicknames, ['alice', 'bob']);
  for (const body of ['4', '5']) await alice.sendMessage('r', body);
  await alice.sendMessage('s', 's1');

  const back = await connect(server);
  const h = await back.hello(resumeOf(bob, { r: 2, s: 0 }));
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  assert.equal(h.sessionId, bob.session.sessionId);
  assert.equal(h.reconnectToken, bob.session.reconnectToken);
  const replay = [];
  for (let i = 0; i < 4; i++) replay.push(await back.message());
  const r = replay.filter((m) => m.room === 'r');
  assert.deepEqual(r.map((m) => [m.seq, m.body]), [[3, '3'], [4, '4'], [5, '5']]);
  assert.deepEqual(replay.filter((m) => m.room === 's').map((m) => [m.seq, m.body]), [[1, 's1']]);
  await back.ok('tool.list_rooms');
  assert.equal(back.frames.length, 0, `more than the replay: ${JSON.stringify(back.frames)}`);
  // The nickname and memberships survived; live delivery resumes.
  assert.deepEqual((await back.ok('tool.list_rooms')).joined.map((j) => [j.name, j.nickname]), [['r', 'bob'], ['s', 'bob']]);
  await alice.sendMessage('r', '6');
  assert.deepEqual([(await back.message('r')).seq], [6]);

  // A room the resume names no ack for replays from the server's ack point (seq 2 in r).
  await back.terminate();
  const again = await connect(server);
  assert.equal((await again.hello(resumeOf(bob, {})))._tag, 'hello.ok');
  const replayed = [];
  for (let i = 0; i < 5; i++) replayed.push(await again.message());
  assert.deepEqual(replayed.filter((m) => m.room === 'r').map((m) => m.seq), [3, 4, 5, 6]);
  assert.deepEqual(replayed.filter((m) => m.room === 's').map((m) => m.seq), [1]);
  await again.ok('tool.list_rooms');
  assert.equal(again.frames.length, 0);
  for (const c of [alice, again]) await c.close();
});

test('a close with 1000 ends the session at once: the others no longer see it, resume is UnknownSessionError', async (t) => {
  const server = await startServer(t, { args: ['--session-grace', '60'] });
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await bob.close(1000);
  await eventually(async () => (await alice.ok('tool.who_is_here', { room: 'r' })).nicknames.length === 1, 2000, 'bob to vanish');
  assert.deepEqual((await alice.ok('tool.who_is_here', { room: 'r' })).nicknames, ['alice']);
  const carol = await session(server);
  assert.equal((await carol.join('r', 'BOB')).nickname, 'BOB');  // the name is free at once
  const back = await connect(server);
  const h = await back.hello(resumeOf(bob, {}));
  assert.deepEqual([h._tag, h.code], ['hello.err', 'UnknownSessionError']);
  assert.equal((await back.waitClose()).code, 4001);
  assert.equal((await metrics(server.port)).parley_sessions, 2);
  for (const c of [alice, carol]) await c.close();
});

test('a close with another code detaches: the session stays for the grace period, then ends', async (t) => {
  const server = await startServer(t, { args: ['--session-grace', '1'] });
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await bob.close(4321);
  assert.deepEqual((await alice.ok('tool.who_is_here', { room: 'r' })).nicknames, ['alice', 'bob']);
  await eventually(async () => (await alice.ok('tool.who_is_here', { room: 'r' })).nicknames.length === 1, 4000, 'the grace to run out');
  const back = await connect(server);
  const h = await back.hello(resumeOf(bob, {}));
  assert.equal(h.code, 'UnknownSessionError');
  assert.equal((await back.waitClose()).code, 4001);
  await alice.close();
});

test('more than 64 missed messages: ReplayBufferOverflowError, close 4003, the session ends', async (t) => {
  const server = await startServer(t, { args: ['--rate-capacity', '200'] });
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await bob.terminate();
  const sends = Array.from({ length: 65 }, (_, i) => alice.call('tool.send_message', { room: 'r', body: `m${i}` }));
  for (const a of await Promise.all(sends)) assert.equal(a._tag, 'tool.ok');
  const back = await connect(server);
  const h = await back.hello(resumeOf(bob, { r: 0 }));
  assert.equal(h._tag, 'hello.err');
  assert.equal(h.code, 'ReplayBufferOverflowError');
  assert.match(h.message, /\br\b/);
  assert.equal((await back.waitClose()).code, 4003);
  assert.equal(back.frames.filter((f) => f._tag === 'room.message').length, 0, 'an overflow must not replay a part');
  assert.deepEqual((await alice.ok('tool.who_is_here', { room: 'r' })).nicknames, ['alice']);
  assert.equal((await metrics(server.port)).parley_replay_overflows_total, 1);
  // The session is gone: a second attempt is UnknownSessionError.
  const third = await connect(server);
  assert.equal((await third.hello(resumeOf(bob, { r: 0 }))).code, 'UnknownSessionError');
  assert.equal((await third.waitClose()).code, 4001);
  await alice.close();
});

test('exactly 64 missed messages still resume with all 64 replayed', async (t) => {
  const server = await startServer(t, { args: ['--rate-capacity', '200'] });
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await bob.terminate();
  await Promise.all(Array.from({ length: 64 }, (_, i) => alice.call('tool.send_message', { room: 'r', body: `m${i}` })));
  const back = await connect(server);
  assert.equal((await back.hello(resumeOf(bob, { r: 0 })))._tag, 'hello.ok');
  for (let i = 1; i <= 64; i++) assert.equal((await back.message('r')).seq, i);
  for (const c of [alice, back]) await c.close();
});

test('a wrong reconnect token is BadReconnectTokenError (4002) and leaves the session resumable', async (t) => {
  const server = await startServer(t);
  const bob = await session(server);
  await bob.terminate();
  const bad = await connect(server);
  const wrong = bob.session.reconnectToken.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A'));
  const h = await bad.hello({ resume: { sessionId: bob.session.sessionId, reconnectToken: wrong, lastAckedSeqByRoom: {} } });
  assert.deepEqual([h._tag, h.code], ['hello.err', 'BadReconnectTokenError']);
  assert.equal((await bad.waitClose()).code, 4002);
  const good = await connect(server);
  assert.equal((await good.hello(resumeOf(bob, {})))._tag, 'hello.ok');
  await good.close();
});

test('an unknown session id is UnknownSessionError (4001)', async (t) => {
  const server = await startServer(t);
  const c = await connect(server);
  const h = await c.hello({
    resume: { sessionId: '00000000-0000-4000-8000-000000000000', reconnectToken: 'x'.repeat(43), lastAckedSeqByRoom: {} },
  });
  assert.deepEqual([h._tag, h.code], ['hello.err', 'UnknownSessionError']);
  assert.equal((await c.waitClose()).code, 4001);
});

test('a resume on a second connection takes the session over; the first is closed with 4009', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  const second = await connect(server);
  assert.equal((await second.hello(resumeOf(bob, {})))._tag, 'hello.ok');
  assert.equal((await bob.waitClose()).code, 4009);
  await alice.sendMessage('r', 'to the new connection');
  assert.equal((await second.message('r')).body, 'to the new connection');
  assert.deepEqual((await alice.ok('tool.who_is_here', { room: 'r' })).nicknames, ['alice', 'bob']);
  for (const c of [alice, second]) await c.close();
});
