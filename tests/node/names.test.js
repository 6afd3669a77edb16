// SPDX-License-Identifier: MIT
// Room slugs and nicknames at their boundaries, case-insensitive collisions, and assigned nicknames.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { session, startServer } = require('./harness');

const SLUG = /^[a-z0-9][a-z0-9-]{0,31}$/;
const NICK = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

async function refused(c, tag, fields, field) {
  const answer = await c.call(tag, fields);
  assert.equal(answer._tag, 'tool.err', `${JSON.stringify(fields)} was accepted`);
  assert.equal(answer.code, 'InvalidArgumentError');
  assert.equal(answer.details.field, field);
  assert.equal(typeof answer.details.rule, 'string');
  return answer;
}

test('room slugs: 1 and 32 characters join, 33 and bad characters are InvalidArgumentError', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  const s32 = 'a' + '-0123456789'.repeat(3).slice(0, 31);
  assert.equal(s32.length, 32);
  for (const room of ['a', '7', s32, 'a-b-c', '0-']) {
    const r = await c.join(room);
    assert.equal(r.room, room);
  }
  for (const room of [s32 + 'x', '', '-a', 'A', 'aB', 'a_b', 'a b', 'é']) {
    const err = await refused(c, 'tool.join_room', { room }, 'room');
    assert.match(err.details.rule, /^(pattern|required|type)/);
  }
  const long = await refused(c, 'tool.join_room', { room: s32 + 'x' }, 'room');
  assert.equal(long.details.rule, `pattern ${SLUG.source}`);
  // The other tools check the slug the same way.
  await refused(c, 'tool.send_message', { room: 'Bad', body: 'x' }, 'room');
  await refused(c, 'tool.who_is_here', { room: s32 + 'x' }, 'room');
  await refused(c, 'tool.leave_room', { room: '' }, 'room');
  await c.close();
});

test('nicknames: 32 characters are kept, 33 and bad characters are InvalidArgumentError', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  const n32 = 'N' + 'a_b-'.repeat(8).slice(0, 31);
  assert.equal(n32.length, 32);
  assert.equal((await c.join('r1', n32)).nickname, n32);
  assert.equal((await c.join('r2', 'x')).nickname, 'x');
  assert.equal((await c.join('r3', '9Lives')).nickname, '9Lives');
  for (const nickname of [n32 + 'a', '', '_a', '-a', 'a.b', 'a b', 'ü']) {
    const err = await refused(c, 'tool.join_room', { room: 'r4', nickname }, 'nickname');
    if (nickname.length > 0 && nickname !== n32 + 'a') assert.equal(err.details.rule, `pattern ${NICK.source}`);
  }
  await c.close();
});

test('nicknames collide case-insensitively within a room, not across rooms', async (t) => {
  const server = await startServer(t);
  const alice = await session(server);
  const bob = await session(server);
  assert.equal((await alice.join('lobby', 'Alice')).nickname, 'Alice');
  for (const nickname of ['Alice', 'alice', 'ALICE', 'aLiCe']) {
    const err = await bob.call('tool.join_room', { room: 'lobby', nickname });
    assert.equal(err._tag, 'tool.err');
    assert.equal(err.code, 'NicknameTakenError');
    assert.deepEqual(err.details, { room: 'lobby', nickname });
  }
  assert.equal((await bob.join('other', 'alice')).nickname, 'alice');
  assert.equal((await bob.join('lobby', 'Alice2')).membersCount, 2);
  // The name is free again once its holder leaves.
  await alice.ok('tool.leave_room', { room: 'lobby' });
  const carol = await session(server);
  assert.equal((await carol.join('lobby', 'alice')).nickname, 'alice');
  for (const c of [alice, bob, carol]) await c.close();
});

test('a join without a nickname gets a distinct adjective-animal one; joining again returns it', async (t) => {
  const server = await startServer(t);
  const seen = new Set();
  const clients = [];
  for (let i = 0; i < 12; i++) {
    const c = await session(server);
    clients.push(c);
    const r = await c.join('auto');
    assert.match(r.nickname, /^[a-z]+-[a-z]+(-\d+)?$/);
    assert.match(r.nickname, NICK);
    assert.ok(!seen.has(r.nickname.toLowerCase()), `duplicate ${r.nickname}`);
    seen.add(r.nickname.toLowerCase());
    assert.equal(r.membersCount, i + 1);
    const again = await c.join('auto', 'Ignored');  // already a member: the first join's answer
    assert.equal(again.nickname, r.nickname);
  }
  const who = await clients[0].ok('tool.who_is_here', { room: 'auto' });
  assert.deepEqual(new Set(who.nicknames.map((n) => n.toLowerCase())), seen);
  for (const c of clients) await c.close();
});
