// SPDX-License-Identifier: MIT
// Direct messages end to end (docs/protocol.md#rooms-people-control): only the recipient sees one, room seqs show no gap,
// each (recipient, room) has its own seqs, acks with direct:true, resume with lastAckedDirectSeqByRoom, the refusals.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, metrics, session, startServer } = require('./harness');
const { quiet, refused } = require('./room_checks');

const FEATURES = { features: ['directMessages'] };

function resumeOf(c, lastAckedSeqByRoom, lastAckedDirectSeqByRoom) {
  const resume = { sessionId: c.session.sessionId, reconnectToken: c.session.reconnectToken, lastAckedSeqByRoom };
  if (lastAckedDirectSeqByRoom) resume.lastAckedDirectSeqByRoom = lastAckedDirectSeqByRoom;
  return { resume };
}

test('a direct message reaches its recipient only; the others see consecutive room seqs', async (t) => {
  const server = await startServer(t);
  const alice = await session(server, FEATURES);
  const bob = await session(server, FEATURES);
  const carol = await session(server, FEATURES);
  for (const [c, n] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']]) await c.join('r', n);

  const s1 = await alice.sendMessage('r', 'room one');
  const d = await alice.sendMessage('r', 'just for bob', { to: 'BOB' });
  const s2 = await alice.sendMessage('r', 'room two');
  assert.deepEqual([s1.seq, s2.seq], [1, 2]);
  assert.deepEqual(Object.keys(d).sort(), ['messageId', 'room', 'sentAt', 'seq', 'to']);
  assert.deepEqual([d.room, d.seq, d.to], ['r', 1, 'bob']);
  assert.notEqual(d.messageId, s1.messageId);

  const got = [await bob.message('r'), await bob.message('r'), await bob.message('r')];
  assert.deepEqual(got[1], { _tag: 'room.message', room: 'r', seq: 1, messageId: d.messageId, fromNickname: 'alice',
    body: 'just for bob', sentAt: d.sentAt, fromKind: 'agent', to: 'bob' });
  assert.deepEqual([got[0].seq, got[0].to, got[2].seq, got[2].to], [1, undefined, 2, undefined]);
  const seen = [await carol.message('r'), await carol.message('r')];
  assert.deepEqual(seen.map((m) => [m.seq, m.body]), [[1, 'room one'], [2, 'room two']]);
  for (const c of [alice, bob, carol]) await quiet(c);  // no echo to alice, nothing more for carol
  // The room's next seq is 3: the DM spent none of them.
  assert.equal((await carol.sendMessage('r', 'three')).seq, 3);
  assert.equal((await bob.message('r')).seq, 3);
  for (const c of [alice, bob, carol]) await c.close();
});

test('direct seqs count per (recipient, room) from 1, whoever sends; a resend with the same clientMsgId is delivered once', async (t) => {
  const server = await startServer(t);
  const alice = await session(server, FEATURES);
  const bob = await session(server, FEATURES);
  const carol = await session(server, FEATURES);
  for (const room of ['r', 's']) for (const [c, n] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']]) await c.join(room, n);
  const seqs = [];
  seqs.push((await alice.sendMessage('r', 'a→b 1', { to: 'bob' })).seq);
  seqs.push((await alice.sendMessage('r', 'a→b 2', { to: 'bob' })).seq);
  seqs.push((await carol.sendMessage('r', 'c→b', { to: 'bob' })).seq);
  seqs.push((await alice.sendMessage('r', 'a→c', { to: 'carol' })).seq);
  seqs.push((await alice.sendMessage('s', 'a→b in s', { to: 'bob' })).seq);
  seqs.push((await bob.sendMessage('r', 'b→a', { to: 'alice' })).seq);
  assert.deepEqual(seqs, [1, 2, 3, 1, 1, 1]);
  const toBob = [await bob.message(), await bob.message(), await bob.message(), await bob.message()];
  assert.deepEqual(toBob.map((m) => [m.room, m.seq, m.fromNickname, m.to]),
    [['r', 1, 'alice', 'bob'], ['r', 2, 'alice', 'bob'], ['r', 3, 'carol', 'bob'], ['s', 1, 'alice', 'bob']]);
  assert.deepEqual([(await carol.message('r')).body, (await alice.message('r')).body], ['a→c', 'b→a']);

  const first = await alice.sendMessage('r', 'once', { to: 'carol', clientMsgId: 'dm-1' });
  assert.deepEqual(await alice.sendMessage('r', 'once', { to: 'carol', clientMsgId: 'dm-1' }), first);
  assert.equal(first.seq, 2);
  assert.equal((await carol.message('r')).body, 'once');
  for (const c of [alice, bob, carol]) await quiet(c);
  for (const c of [alice, bob, carol]) await c.close();
});

test('send_message to: unknown, yourself, a client without the feature, a watcher sending, bad types; nothing is delivered', async (t) => {
  const server = await startServer(t);
  const alice = await session(server, FEATURES);
  const bob = await session(server, FEATURES);
  const old = await session(server);  // no features
  const other = await session(server, { features: ['somethingElse'] });
  const sam = await session(server, FEATURES);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await old.join('r', 'old');
  await other.join('r', 'other');
  await sam.join('elsewhere', 'sam');
  const messagesBefore = (await metrics(server.port)).parley_messages_total;

  const nf = await refused(alice, 'tool.send_message', { room: 'r', body: 'x', to: 'nobody' }, 'NotFoundError');
  assert.deepEqual(nf.details, { room: 'r', nickname: 'nobody' });
  await refused(alice, 'tool.send_message', { room: 'r', body: 'x', to: 'sam' }, 'NotFoundError');  // in another room
  for (const to of ['alice', 'ALICE']) {
    const self = await refused(alice, 'tool.send_message', { room: 'r', body: 'x', to }, 'InvalidArgumentError');
    assert.equal(self.details.field, 'to');
  }
  for (const to of ['old', 'other']) {
    const f = await refused(alice, 'tool.send_message', { room: 'r', body: 'x', to }, 'ForbiddenError');
    assert.equal(f.details.room, 'r');
  }
  // A client without the feature may still send them.
  assert.equal((await old.sendMessage('r', 'from old', { to: 'bob' })).seq, 1);
  assert.equal((await bob.message('r')).to, 'bob');
  for (const to of [42, true, ['bob'], { n: 'bob' }, '', 'no spaces']) {
    const e = await refused(alice, 'tool.send_message', { room: 'r', body: 'x', to }, 'InvalidArgumentError');
    assert.equal(e.details.field, 'to', JSON.stringify(e));
  }
  await refused(sam, 'tool.send_message', { room: 'r', body: 'x', to: 'bob' }, 'NotInRoomError');
  await refused(alice, 'tool.send_message', { room: 'nowhere', body: 'x', to: 'bob' }, 'NotInRoomError');
  // A watcher may not send a direct message either.
  await alice.ok('tool.set_role', { room: 'r', nickname: 'bob', role: 'watcher' });
  await bob.next((f) => f._tag === 'room.event' && f.kind === 'role');
  assert.deepEqual((await refused(bob, 'tool.send_message', { room: 'r', body: 'x', to: 'alice' }, 'ForbiddenError')).details,
    { room: 'r', role: 'watcher' });

  for (const c of [alice, bob, old, other, sam]) await quiet(c);
  assert.equal((await metrics(server.port)).parley_messages_total, messagesBefore + 1);
  // No room seq was spent on a refusal, and the next DM to bob is his seq 2.
  assert.equal((await alice.sendMessage('r', 'room')).seq, 1);
  assert.equal((await alice.sendMessage('r', 'dm', { to: 'bob' })).seq, 2);
  for (const c of [alice, bob, old, other, sam]) await c.close();
});

test('hello features must be an array of strings', async (t) => {
  const server = await startServer(t);
  for (const features of ['directMessages', 7, { directMessages: true }, [7], [null]]) {
    const c = await connect(server);
    const h = await c.hello({ features });
    assert.deepEqual([h._tag, h.code], ['hello.err', 'BadHandshakeFrameError'], JSON.stringify({ features, h }));
    await c.waitClose();
  }
  assert.equal((await metrics(server.port)).parley_sessions, 0);
});

test('direct acks ({direct:true}) and resume with lastAckedDirectSeqByRoom replay exactly the unacked DMs, after the room\'s', async (t) => {
  const server = await startServer(t);
  const alice = await session(server, FEATURES);
  const bob = await session(server, FEATURES);
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');
  await alice.join('s', 'alice');
  await bob.join('s', 'bob');
  for (let i = 1; i <= 3; i++) await alice.sendMessage('r', `room ${i}`);
  for (let i = 1; i <= 3; i++) await alice.sendMessage('r', `dm ${i}`, { to: 'bob' });
  await alice.sendMessage('s', 'dm s1', { to: 'bob' });
  for (let i = 0; i < 7; i++) await bob.message();
  // A direct ack acks the direct stream only: room seq 3 stays unacked. Nothing is acked in s.
  bob.send({ _tag: 'ack', room: 'r', seq: 2, direct: true });
  bob.send({ _tag: 'ack', room: 'r', seq: 1 });
  await bob.ok('tool.list_rooms');
  assert.deepEqual(bob.frames, [], 'an ack got an answer');
  // A direct ack past the latest direct seq is refused and acks nothing; a direct that is not a boolean is a bad frame.
  bob.send({ _tag: 'ack', room: 'r', seq: 4, direct: true });
  const future = await bob.nextTagged('system.error');
  assert.equal(future.code, 'InvalidArgumentError', JSON.stringify(future));
  assert.equal(future.details.field, 'seq');
  for (const direct of ['yes', 1, null, [true]]) {
    bob.send({ _tag: 'ack', room: 'r', seq: 3, direct });
    const e = await bob.nextTagged('system.error');
    assert.equal(e.code, 'BadFrameError', `direct ${JSON.stringify(direct)} → ${JSON.stringify(e)}`);
  }

  await bob.terminate();
  await alice.sendMessage('r', 'dm 4', { to: 'bob' });
  await alice.sendMessage('r', 'room 4');
  // No ack named: the server's own ack points (room 1 and direct 2 in r; nothing in s).
  let back = await connect(server);
  let h = await back.hello(resumeOf(bob, {}));
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  let replay = [];
  for (let i = 0; i < 6; i++) replay.push(await back.message());
  await quiet(back);
  const r = replay.filter((m) => m.room === 'r').map((m) => [m.to ? 'dm' : 'room', m.seq, m.body]);
  assert.deepEqual(r, [['room', 2, 'room 2'], ['room', 3, 'room 3'], ['room', 4, 'room 4'], ['dm', 3, 'dm 3'], ['dm', 4, 'dm 4']]);
  assert.deepEqual(replay.filter((m) => m.room === 's').map((m) => [m.seq, m.body, m.to]), [[1, 'dm s1', 'bob']]);

  // Named acks win: direct 3 in r replays dm 4 only, room 4 in r no room message, direct 0 in s its DM again.
  await back.terminate();
  back = await connect(server);
  h = await back.hello(resumeOf(bob, { r: 4, s: 0 }, { r: 3, s: 0 }));
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  replay = [];
  for (let i = 0; i < 2; i++) replay.push(await back.message());
  await quiet(back);
  assert.deepEqual(replay.map((m) => [m.room, m.seq, m.body, m.to]).sort(), [['r', 4, 'dm 4', 'bob'], ['s', 1, 'dm s1', 'bob']]);

  // A resume past the latest direct seq, or naming it with the wrong types, is refused and changes nothing.
  await back.terminate();
  for (const direct of [[], 'r', { r: '1' }, { r: -1 }, { r: 1.5 }, { 'Not A Room': 1 }]) {
    const c = await connect(server);
    const e = await c.hello(resumeOf(bob, { r: 4, s: 0 }, direct));
    assert.deepEqual([e._tag, e.code], ['hello.err', 'BadHandshakeFrameError'], `${JSON.stringify(direct)} → ${JSON.stringify(e)}`);
    await c.waitClose();
  }
  back = await connect(server);
  h = await back.hello(resumeOf(bob, { r: 4, s: 0 }, { r: 5 }));
  assert.deepEqual([h._tag, h.code], ['hello.err', 'BadHandshakeFrameError'], JSON.stringify(h));
  await back.waitClose();
  back = await connect(server);
  h = await back.hello(resumeOf(bob, { r: 4, s: 0 }, { r: 4, s: 1 }));
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  await quiet(back);
  // Live DMs go on after the resume with the next direct seq.
  assert.equal((await alice.sendMessage('r', 'dm 5', { to: 'bob' })).seq, 5);
  assert.deepEqual([(await back.message('r')).seq], [5]);
  for (const c of [alice, back]) await c.close();
});

test('the room\'s seqs stay consecutive for every member while DMs fly, and each DM goes to one recipient', async (t) => {
  const server = await startServer(t);
  const members = [];
  for (const n of ['m0', 'm1', 'm2', 'm3']) {
    const c = await session(server, FEATURES);
    await c.join('busy', n);
    members.push(c);
  }
  const expectedDms = [0, 0, 0, 0];
  for (let i = 0; i < 12; i++) {
    const from = i % 4;
    const to = (i + 1) % 4;
    await members[from].sendMessage('busy', `room ${i}`);
    const d = await members[from].sendMessage('busy', `dm ${i}`, { to: `m${to}` });
    assert.equal(d.seq, ++expectedDms[to]);
  }
  for (let k = 0; k < 4; k++) {
    const got = [];
    for (let i = 0; i < 12; i++) got.push(await members[k].message('busy'));
    await quiet(members[k]);
    const room = got.filter((m) => m.to === undefined).map((m) => m.seq);
    const received = Array.from({ length: 12 }, (_, i) => i + 1).filter((s) => (s - 1) % 4 !== k);
    assert.deepEqual(room, received, `m${k} room seqs`);
    const dms = got.filter((m) => m.to !== undefined);
    assert.deepEqual(dms.map((m) => [m.to, m.seq]), [1, 2, 3].map((s) => [`m${k}`, s]));
  }
  for (const c of members) await c.close();
});
