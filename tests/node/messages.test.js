// SPDX-License-Identifier: MIT
// send_message and delivery: seq per room, no self-echo, body limits in UTF-8 bytes, the rate limit, idempotent resends.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { metrics, session, sleep, startServer } = require('./harness');

test('seq counts per room from 1, every other member gets room.message, the sender no echo', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  const carol = await session(server);
  await alice.join('one', 'alice');
  await bob.join('one', 'bob');
  await carol.join('one', 'carol');
  await alice.join('two', 'alice');
  await bob.join('two', 'bob');

  const sent = [];
  sent.push(await alice.sendMessage('one', 'a1'));
  sent.push(await bob.sendMessage('one', 'b1'));
  sent.push(await alice.sendMessage('two', 'a2'));
  sent.push(await alice.sendMessage('one', 'a3'));
  assert.deepEqual(sent.map((s) => [s.room, s.seq]), [['one', 1], ['one', 2], ['two', 1], ['one', 3]]);
  for (const s of sent) {
    assert.match(s.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(s.sentAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }

  const m = await carol.message('one');
  // fromKind is our addition (a person at the web page, or an agent); the reference ignores it.
  assert.deepEqual(Object.keys(m).sort(), ['_tag', 'body', 'fromKind', 'fromNickname', 'messageId', 'room', 'sentAt', 'seq']);
  assert.deepEqual(m, { _tag: 'room.message', room: 'one', seq: 1, messageId: sent[0].messageId, fromNickname: 'alice', body: 'a1', sentAt: sent[0].sentAt, fromKind: 'agent' });
  assert.deepEqual([(await carol.message('one')).seq, (await carol.message('one')).seq], [2, 3]);

  const bobGot = [];
  for (let i = 0; i < 3; i++) bobGot.push(await bob.message());
  assert.deepEqual(bobGot.map((x) => [x.room, x.seq, x.body]), [['one', 1, 'a1'], ['two', 1, 'a2'], ['one', 3, 'a3']]);
  const aliceGot = await alice.message('one');
  assert.deepEqual([aliceGot.seq, aliceGot.fromNickname], [2, 'bob']);

  // No echo: after a round trip nothing else is queued for the sender.
  await alice.ok('tool.list_rooms');
  await bob.ok('tool.list_rooms');
  assert.deepEqual(alice.frames, []);
  assert.deepEqual(bob.frames, []);
  for (const c of [alice, bob, carol]) await c.close();
});

test('bodies are limited to 8192 UTF-8 bytes, whatever the characters', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('big', 'alice');
  await bob.join('big', 'bob');

  const fits = ['x'.repeat(8192), 'é'.repeat(4096), '€'.repeat(2730) + 'ab', '😀'.repeat(2048)];
  for (const body of fits) {
    assert.equal(Buffer.byteLength(body), 8192);
    await alice.sendMessage('big', body);
    assert.equal((await bob.message('big')).body, body);
  }
  // 4096 characters but 8193 bytes; and 2049 emoji (4098 UTF-16 units, 8196 bytes).
  const over = ['x'.repeat(8193), 'é'.repeat(4096) + 'x', '€'.repeat(2731), '😀'.repeat(2049)];
  for (const body of over) {
    assert.ok(Buffer.byteLength(body) > 8192);
    const err = await alice.call('tool.send_message', { room: 'big', body });
    assert.equal(err._tag, 'tool.err');
    assert.equal(err.code, 'InvalidArgumentError');
    assert.deepEqual(err.details, { field: 'body', rule: 'maxBytes 8192' });
  }
  const empty = await alice.call('tool.send_message', { room: 'big', body: '' });
  assert.deepEqual([empty.code, empty.details], ['InvalidArgumentError', { field: 'body', rule: 'minBytes 1' }]);
  await alice.ok('tool.list_rooms');
  assert.equal(bob.frames.length, 0, 'a refused body was delivered');
  for (const c of [alice, bob]) await c.close();
});

test('the 21st rapid send is RateLimitedError with retryAfterMs; waiting that long works', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  await alice.join('fast', 'alice');
  // All 21 go out before any answer comes back, so the bucket cannot refill in between.
  const answers = await Promise.all(
    Array.from({ length: 21 }, (_, i) => alice.call('tool.send_message', { room: 'fast', body: `m${i}` })),
  );
  assert.deepEqual(answers.slice(0, 20).map((a) => a._tag), Array(20).fill('tool.ok'));
  assert.deepEqual(answers.slice(0, 20).map((a) => a.result.seq), Array.from({ length: 20 }, (_, i) => i + 1));
  const limited = answers[20];
  assert.equal(limited._tag, 'tool.err');
  assert.equal(limited.code, 'RateLimitedError');
  assert.ok(Number.isInteger(limited.details.retryAfterMs), JSON.stringify(limited));
  assert.ok(limited.details.retryAfterMs > 0 && limited.details.retryAfterMs <= 100, JSON.stringify(limited));
  assert.equal((await metrics(server.port)).parley_rate_limited_total, 1);
  await sleep(limited.details.retryAfterMs + 20);
  assert.equal((await alice.sendMessage('fast', 'after the wait')).seq, 21);
  await alice.close();
});

test('a resend with the same clientMsgId returns the first result and is delivered once', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('idem', 'alice');
  await bob.join('idem', 'bob');
  const first = await alice.sendMessage('idem', 'hello once', { clientMsgId: 'msg-1_A' });
  const again = await alice.sendMessage('idem', 'hello once', { clientMsgId: 'msg-1_A' });
  assert.deepEqual(again, first);
  const other = await alice.sendMessage('idem', 'second', { clientMsgId: 'msg-2' });
  assert.equal(other.seq, first.seq + 1);
  assert.deepEqual([(await bob.message('idem')).body, (await bob.message('idem')).body], ['hello once', 'second']);
  await bob.ok('tool.list_rooms');
  assert.equal(bob.frames.length, 0, 'the resend was delivered again');
  // A resend spends no rate-limit token: 25 resends then 19 fresh sends all pass.
  for (let i = 0; i < 25; i++) assert.deepEqual(await alice.sendMessage('idem', 'hello once', { clientMsgId: 'msg-1_A' }), first);
  const m = await metrics(server.port);
  assert.equal(m.parley_messages_total, 2);
  assert.equal(m.parley_rate_limited_total, 0);
  // Bad keys are InvalidArgumentError.
  for (const clientMsgId of ['', 'x'.repeat(65), 'a.b', 'ä']) {
    const err = await alice.call('tool.send_message', { room: 'idem', body: 'x', clientMsgId });
    assert.deepEqual([err.code, err.details.field], ['InvalidArgumentError', 'clientMsgId']);
  }
  assert.equal((await alice.sendMessage('idem', 'x', { clientMsgId: 'k'.repeat(64) })).seq, first.seq + 2);
  for (const c of [alice, bob]) await c.close();
});

test('list_rooms, who_is_here, leave_room and NotInRoomError', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  await alice.join('a-room', 'alice');
  await alice.join('b-room', 'alice2');
  await bob.join('b-room', 'bob');
  assert.deepEqual(await bob.ok('tool.list_rooms'), {
    joined: [{ name: 'b-room', nickname: 'bob', membersCount: 2, role: 'member' }],
    available: [{ name: 'a-room', membersCount: 1 }],
  });
  assert.deepEqual(await bob.ok('tool.who_is_here', { room: 'b-room' }), {
    room: 'b-room', nicknames: ['alice2', 'bob'],
    members: [{ nickname: 'alice2', kind: 'agent', role: 'owner' }, { nickname: 'bob', kind: 'agent', role: 'member' }],
  });
  for (const [tag, fields] of [
    ['tool.who_is_here', { room: 'a-room' }],
    ['tool.send_message', { room: 'a-room', body: 'x' }],
    ['tool.leave_room', { room: 'a-room' }],
    ['tool.send_message', { room: 'nowhere', body: 'x' }],
  ]) {
    const err = await bob.call(tag, fields);
    assert.equal(err.code, 'NotInRoomError', `${tag} ${JSON.stringify(err)}`);
    assert.deepEqual(err.details, { room: fields.room });
  }
  assert.deepEqual(await alice.ok('tool.leave_room', { room: 'b-room' }), { room: 'b-room' });
  assert.deepEqual(await bob.ok('tool.who_is_here', { room: 'b-room' }), {
    room: 'b-room', nicknames: ['bob'], members: [{ nickname: 'bob', kind: 'agent', role: 'member' }],
  });
  // requestId: at most 128 characters.
  alice.send({ _tag: 'tool.list_rooms', requestId: 'q'.repeat(128) });
  assert.equal((await alice.nextTagged('tool.ok')).requestId, 'q'.repeat(128));
  alice.send({ _tag: 'tool.list_rooms', requestId: 'q'.repeat(129) });
  assert.equal((await alice.nextTagged('system.error')).code, 'BadFrameError');
  for (const c of [alice, bob]) await c.close();
});
