// SPDX-License-Identifier: MIT
// Rooms people control, end to end (docs/protocol.md#rooms-people-control): public rooms as before, private rooms,
// invites, knocks, what list_rooms and who_is_here show to whom, and what happens to a room when its owner's session ends.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { session, sleep, startServer } = require('./harness');
const { event, quiet, refused } = require('./room_checks');

const FEATURES = { features: ['directMessages'] };
// Well-formed but never issued: refused for what they name, not for their shape.
const UNKNOWN_INVITE = 'A'.repeat(32);
const UNKNOWN_KNOCK = 'B'.repeat(22);

test('public rooms behave as before: join creates, send delivers with seqs, who_is_here and list_rooms, plus role', async (t) => {
  const server = await startServer(t);
  const alice = await session(server, FEATURES);
  const bob = await session(server);
  const carol = await session(server);
  assert.deepEqual(await alice.join('lobby', 'alice'),
    { room: 'lobby', nickname: 'alice', membersCount: 1, role: 'owner', visibility: 'public' });
  assert.deepEqual(await bob.join('lobby', 'bob'),
    { room: 'lobby', nickname: 'bob', membersCount: 2, role: 'member', visibility: 'public' });
  const assigned = await carol.join('lobby');
  assert.match(assigned.nickname, /^[a-z]+-[a-z]+(-\d+)?$/);
  assert.equal(assigned.role, 'member');
  // Joining again answers the same, and a taken nickname is still NicknameTakenError.
  assert.deepEqual(await bob.join('lobby', 'bob'),
    { room: 'lobby', nickname: 'bob', membersCount: 3, role: 'member', visibility: 'public' });
  const taken = await refused(await session(server), 'tool.join_room', { room: 'lobby', nickname: 'BOB' }, 'NicknameTakenError');
  assert.deepEqual(taken.details, { room: 'lobby', nickname: 'BOB' });

  assert.equal((await alice.sendMessage('lobby', 'one')).seq, 1);
  assert.equal((await bob.sendMessage('lobby', 'two')).seq, 2);
  const m = await carol.message('lobby');
  assert.deepEqual([m.seq, m.fromNickname, m.body, m.to], [1, 'alice', 'one', undefined]);
  assert.equal((await carol.message('lobby')).seq, 2);
  assert.deepEqual([(await bob.message('lobby')).seq, (await alice.message('lobby')).seq], [1, 2]);

  assert.deepEqual(await bob.ok('tool.who_is_here', { room: 'lobby' }), {
    room: 'lobby', nicknames: ['alice', 'bob', assigned.nickname],
    members: [{ nickname: 'alice', kind: 'agent', role: 'owner' }, { nickname: 'bob', kind: 'agent', role: 'member' },
              { nickname: assigned.nickname, kind: 'agent', role: 'member' }],
  });
  await alice.join('other', 'al');
  // Public entries carry no visibility; joined ones carry the caller's role.
  assert.deepEqual(await bob.ok('tool.list_rooms'), {
    joined: [{ name: 'lobby', nickname: 'bob', membersCount: 3, role: 'member' }],
    available: [{ name: 'other', membersCount: 1 }],
  });
  assert.deepEqual(await alice.ok('tool.list_rooms'), {
    joined: [{ name: 'lobby', nickname: 'alice', membersCount: 3, role: 'owner' },
             { name: 'other', nickname: 'al', membersCount: 1, role: 'owner' }],
    available: [],
  });
  // An invite on a public room is ignored.
  const dave = await session(server);
  assert.equal((await dave.ok('tool.join_room', { room: 'other', invite: UNKNOWN_INVITE })).role, 'member');
  // create_room "public" makes a room anyone joins, its creator the owner.
  assert.deepEqual(await dave.ok('tool.create_room', { room: 'open', visibility: 'public', nickname: 'dave' }),
    { room: 'open', nickname: 'dave', membersCount: 1, role: 'owner', visibility: 'public' });
  assert.equal((await bob.join('open')).role, 'member');
  for (const c of [alice, bob, carol, dave]) await c.close();
});

test('create_room: shape, RoomExistsError, bad visibility and types; a private room is hidden from the rest', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const sam = await session(server);
  assert.deepEqual(await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' }),
    { room: 'vault', nickname: 'olga', membersCount: 1, role: 'owner', visibility: 'private' });
  await sam.join('hall', 'sam');
  const before = { olga: await olga.ok('tool.list_rooms'), sam: await sam.ok('tool.list_rooms') };
  assert.deepEqual(before.olga, {
    joined: [{ name: 'vault', nickname: 'olga', membersCount: 1, role: 'owner', visibility: 'private' }],
    available: [{ name: 'hall', membersCount: 1 }],
  });
  assert.deepEqual(before.sam, { joined: [{ name: 'hall', nickname: 'sam', membersCount: 1, role: 'owner' }], available: [] });

  for (const [room, who] of [['vault', sam], ['hall', olga], ['vault', olga]]) {
    const e = await refused(who, 'tool.create_room', { room, visibility: 'private' }, 'RoomExistsError');
    assert.deepEqual(e.details, { room });
  }
  for (const [fields, field] of [
    [{ room: 'x1', visibility: 'secret' }, 'visibility'], [{ room: 'x2' }, 'visibility'], [{ room: 'x3', visibility: 1 }, 'visibility'],
    [{ room: 'x4', visibility: ['private'] }, 'visibility'], [{ room: 'Bad Room', visibility: 'private' }, 'room'],
    [{ room: 7, visibility: 'private' }, 'room'], [{ room: 'x5', visibility: 'private', nickname: 5 }, 'nickname'],
    [{ room: 'x6', visibility: 'private', nickname: 'no spaces' }, 'nickname'],
  ]) {
    const e = await refused(sam, 'tool.create_room', fields, 'InvalidArgumentError');
    assert.equal(e.details.field, field, JSON.stringify(e));
  }
  // A private room is NotInRoomError to a non-member's who_is_here, exactly like a room that does not exist.
  const hidden = await refused(sam, 'tool.who_is_here', { room: 'vault' }, 'NotInRoomError');
  const none = await refused(sam, 'tool.who_is_here', { room: 'nowhere' }, 'NotInRoomError');
  assert.deepEqual([hidden.details, none.details], [{ room: 'vault' }, { room: 'nowhere' }]);
  await refused(sam, 'tool.send_message', { room: 'vault', body: 'x' }, 'NotInRoomError');
  // Joining without an invite, or with one that does not exist.
  assert.deepEqual((await refused(sam, 'tool.join_room', { room: 'vault' }, 'RoomPrivateError')).details, { room: 'vault' });
  assert.deepEqual((await refused(sam, 'tool.join_room', { room: 'vault', invite: UNKNOWN_INVITE }, 'InviteInvalidError')).details,
    { room: 'vault' });
  await refused(sam, 'tool.join_room', { room: 'nowhere', invite: UNKNOWN_INVITE }, 'InviteInvalidError');
  await refused(sam, 'tool.join_room', { room: 'vault', invite: 42 }, 'InvalidArgumentError');
  // Nothing changed: no room was made, nobody joined.
  assert.deepEqual(await olga.ok('tool.list_rooms'), before.olga);
  assert.deepEqual(await sam.ok('tool.list_rooms'), before.sam);
  assert.deepEqual((await olga.ok('tool.who_is_here', { room: 'vault' })).nicknames, ['olga']);
  for (const c of [olga, sam]) await c.close();
});

test('invites: shape and limits, maxUses 1 works once, watchers cannot send, the admitted keep seeing the room', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const before = Date.now();
  const inv = await olga.ok('tool.invite', { room: 'vault', maxUses: 1 });
  assert.deepEqual(Object.keys(inv).sort(), ['code', 'expiresAt', 'maxUses', 'role', 'room']);
  assert.deepEqual([inv.room, inv.role, inv.maxUses], ['vault', 'member', 1]);
  assert.match(inv.code, /^[A-Za-z0-9_-]{32}$/);
  assert.match(inv.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const lifetime = Date.parse(inv.expiresAt) - before;
  assert.ok(lifetime > 86390e3 && lifetime < 86410e3, `default lifetime: ${lifetime} ms`);
  const unlimited = await olga.ok('tool.invite', { room: 'vault', expiresInS: 60, role: 'watcher' });
  assert.equal(unlimited.maxUses, undefined);
  assert.equal(unlimited.role, 'watcher');
  assert.notEqual(unlimited.code, inv.code);
  const inMinute = Date.parse(unlimited.expiresAt) - before;
  assert.ok(inMinute > 50e3 && inMinute < 70e3, `expiresInS 60: ${inMinute} ms`);

  const bob = await session(server);
  assert.deepEqual(await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob', invite: inv.code }),
    { room: 'vault', nickname: 'bob', membersCount: 2, role: 'member', visibility: 'private' });
  const carol = await session(server);
  assert.deepEqual((await refused(carol, 'tool.join_room', { room: 'vault', invite: inv.code }, 'InviteInvalidError')).details,
    { room: 'vault' });
  // The watcher invite works for many; a watcher reads but may not send.
  assert.equal((await carol.ok('tool.join_room', { room: 'vault', nickname: 'carol', invite: unlimited.code })).role, 'watcher');
  const dan = await session(server);
  assert.equal((await dan.ok('tool.join_room', { room: 'vault', nickname: 'dan', invite: unlimited.code })).role, 'watcher');
  const w = await refused(carol, 'tool.send_message', { room: 'vault', body: 'hi' }, 'ForbiddenError');
  assert.deepEqual(w.details, { room: 'vault', role: 'watcher' });
  assert.equal((await bob.sendMessage('vault', 'from bob')).seq, 1);
  assert.equal((await carol.message('vault')).body, 'from bob');
  assert.deepEqual((await olga.ok('tool.who_is_here', { room: 'vault' })).members.map((m) => [m.nickname, m.role]),
    [['olga', 'owner'], ['bob', 'member'], ['carol', 'watcher'], ['dan', 'watcher']]);

  // Owners only: a member or watcher inviting is ForbiddenError naming its role; a stranger, NotInRoomError.
  assert.deepEqual((await refused(bob, 'tool.invite', { room: 'vault' }, 'ForbiddenError')).details, { room: 'vault', role: 'member' });
  assert.deepEqual((await refused(carol, 'tool.invite', { room: 'vault' }, 'ForbiddenError')).details, { room: 'vault', role: 'watcher' });
  const stranger = await session(server);
  await refused(stranger, 'tool.invite', { room: 'vault' }, 'NotInRoomError');
  await refused(stranger, 'tool.invite', { room: 'nowhere' }, 'NotInRoomError');
  for (const [fields, field] of [
    [{ role: 'owner' }, 'role'], [{ role: 'admin' }, 'role'], [{ role: 1 }, 'role'],
    [{ maxUses: 0 }, 'maxUses'], [{ maxUses: 1000001 }, 'maxUses'], [{ maxUses: '1' }, 'maxUses'], [{ maxUses: 1.5 }, 'maxUses'],
    [{ maxUses: -1 }, 'maxUses'], [{ expiresInS: 0 }, 'expiresInS'], [{ expiresInS: 2592001 }, 'expiresInS'],
    [{ expiresInS: '60' }, 'expiresInS'], [{ room: 5 }, 'room'],
  ]) {
    const e = await refused(olga, 'tool.invite', { room: 'vault', ...fields }, 'InvalidArgumentError');
    assert.equal(e.details.field, field, JSON.stringify(e));
  }
  // The largest allowed values are fine.
  const big = await olga.ok('tool.invite', { room: 'vault', maxUses: 1000000, expiresInS: 2592000 });
  assert.equal(big.maxUses, 1000000);

  // Admitted by an invite, a principal keeps seeing the private room after leaving, and rejoins without one.
  await bob.ok('tool.leave_room', { room: 'vault' });
  assert.deepEqual(await bob.ok('tool.list_rooms'), { joined: [], available: [{ name: 'vault', membersCount: 3, visibility: 'private' }] });
  assert.deepEqual(await stranger.ok('tool.list_rooms'), { joined: [], available: [] });
  assert.equal((await bob.join('vault', 'bob')).role, 'member');
  for (const c of [olga, bob, carol, dan, stranger]) await c.close();
});

test('an invite that expired is InviteInvalidError', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private' });
  const inv = await olga.ok('tool.invite', { room: 'vault', expiresInS: 1 });
  await sleep(1300);
  const late = await session(server);
  await refused(late, 'tool.join_room', { room: 'vault', invite: inv.code }, 'InviteInvalidError');
  assert.equal((await olga.ok('tool.who_is_here', { room: 'vault' })).nicknames.length, 1);
  for (const c of [olga, late]) await c.close();
});

test('the 11th invite from one principal within a minute is RateLimitedError', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private' });
  await olga.ok('tool.create_room', { room: 'safe', visibility: 'private' });
  const answers = await Promise.all(
    Array.from({ length: 11 }, (_, i) => olga.call('tool.invite', { room: i % 2 ? 'safe' : 'vault' })),
  );
  assert.deepEqual(answers.slice(0, 10).map((a) => a._tag), Array(10).fill('tool.ok'), JSON.stringify(answers.slice(0, 10)));
  assert.equal(answers[10].code, 'RateLimitedError', JSON.stringify(answers[10]));
  assert.ok(answers[10].details.retryAfterMs > 0 && answers[10].details.retryAfterMs <= 6000, JSON.stringify(answers[10]));
  // The refused one made no invite: the ten made still work, and another owner has a budget of its own.
  const joiner = await session(server);
  await joiner.ok('tool.join_room', { room: 'vault', invite: answers[0].result.code });
  const bob = await session(server);
  await bob.ok('tool.create_room', { room: 'bobs', visibility: 'private' });
  await bob.ok('tool.invite', { room: 'bobs' });
  for (const c of [olga, joiner, bob]) await c.close();
});

test('knock: owners hear it, approve admits once, deny refuses, answered knocks are NotFoundError', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const otto = await session(server);  // a second owner hears knocks too
  const mona = await session(server);  // a member does not
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  await otto.ok('tool.join_room', { room: 'vault', nickname: 'otto', invite: inv.code });
  await mona.ok('tool.join_room', { room: 'vault', nickname: 'mona', invite: inv.code });
  await olga.ok('tool.set_role', { room: 'vault', nickname: 'otto', role: 'owner' });
  await event(otto, 'vault', 'role');

  const kim = await session(server);
  const k = await kim.ok('tool.knock', { room: 'vault', nickname: 'kim', note: 'let me in please' });
  assert.equal(k.status, 'pending');
  assert.equal(k.room, 'vault');
  assert.equal(typeof k.knockId, 'string');
  for (const owner of [olga, otto]) {
    const e = await event(owner, 'vault', 'knock');
    assert.deepEqual(e, { _tag: 'room.event', room: 'vault', kind: 'knock', knockId: k.knockId, nickname: 'kim', note: 'let me in please' });
  }
  await quiet(mona);
  // Knocking again returns the same pending knock and tells nobody again.
  assert.deepEqual(await kim.ok('tool.knock', { room: 'vault', nickname: 'kim' }), k);
  await quiet(olga);
  // Not a member yet.
  await refused(kim, 'tool.who_is_here', { room: 'vault' }, 'NotInRoomError');
  // Only owners answer.
  assert.deepEqual((await refused(mona, 'tool.approve', { room: 'vault', knockId: k.knockId }, 'ForbiddenError')).details,
    { room: 'vault', role: 'member' });
  await refused(kim, 'tool.approve', { room: 'vault', knockId: k.knockId }, 'NotInRoomError');
  await refused(olga, 'tool.approve', { room: 'vault', knockId: UNKNOWN_KNOCK }, 'NotFoundError');
  await refused(olga, 'tool.approve', { room: 'vault', knockId: 7 }, 'InvalidArgumentError');
  await refused(olga, 'tool.approve', { room: 'vault' }, 'InvalidArgumentError');

  assert.deepEqual(await olga.ok('tool.approve', { room: 'vault', knockId: k.knockId }), { room: 'vault', knockId: k.knockId, nickname: 'kim' });
  assert.deepEqual(await event(kim, 'vault', 'approved'), { _tag: 'room.event', room: 'vault', kind: 'approved', nickname: 'kim', membersCount: 4 });
  assert.deepEqual((await kim.ok('tool.who_is_here', { room: 'vault' })).members.map((m) => [m.nickname, m.role]),
    [['olga', 'owner'], ['otto', 'owner'], ['mona', 'member'], ['kim', 'member']]);
  assert.deepEqual((await kim.ok('tool.list_rooms')).joined,
    [{ name: 'vault', nickname: 'kim', membersCount: 4, role: 'member', visibility: 'private' }]);
  await refused(otto, 'tool.approve', { room: 'vault', knockId: k.knockId }, 'NotFoundError');
  await refused(otto, 'tool.deny', { room: 'vault', knockId: k.knockId }, 'NotFoundError');
  // In the room, or admitted and gone: knocking is InvalidArgumentError (join directly).
  await refused(kim, 'tool.knock', { room: 'vault' }, 'InvalidArgumentError');
  await kim.ok('tool.leave_room', { room: 'vault' });
  await refused(kim, 'tool.knock', { room: 'vault' }, 'InvalidArgumentError');
  assert.equal((await kim.join('vault')).role, 'member');

  // Deny: the knocker hears "denied" and is not let in; the answered knock is gone.
  const ned = await session(server);
  const k2 = await ned.ok('tool.knock', { room: 'vault' });
  const heard = await event(olga, 'vault', 'knock');
  assert.match(heard.nickname, /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/);
  assert.equal(heard.note, undefined);
  await event(otto, 'vault', 'knock');
  assert.deepEqual(await otto.ok('tool.deny', { room: 'vault', knockId: k2.knockId }), { room: 'vault', knockId: k2.knockId, nickname: heard.nickname });
  assert.deepEqual(await event(ned, 'vault', 'denied'), { _tag: 'room.event', room: 'vault', kind: 'denied' });
  await refused(olga, 'tool.approve', { room: 'vault', knockId: k2.knockId }, 'NotFoundError');
  await refused(olga, 'tool.deny', { room: 'vault', knockId: k2.knockId }, 'NotFoundError');
  await refused(ned, 'tool.join_room', { room: 'vault' }, 'RoomPrivateError');
  await refused(ned, 'tool.who_is_here', { room: 'vault' }, 'NotInRoomError');
  // A denied principal may knock again, and gets a new knock.
  const k3 = await ned.ok('tool.knock', { room: 'vault' });
  assert.notEqual(k3.knockId, k2.knockId);
  for (const c of [olga, otto, mona, kim, ned]) await c.close();
});

test('knock refusals: no room, a public room, bad note/nickname; approving gives a free nickname if the asked one was taken', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.join('hall', 'olga');
  const kim = await session(server);
  assert.deepEqual((await refused(kim, 'tool.knock', { room: 'nowhere' }, 'NotFoundError')).details, { room: 'nowhere' });
  await refused(kim, 'tool.knock', { room: 'hall' }, 'InvalidArgumentError');
  for (const [fields, field] of [
    [{ note: '' }, 'note'], [{ note: 'x'.repeat(501) }, 'note'], [{ note: 5 }, 'note'], [{ nickname: 'no spaces' }, 'nickname'],
    [{ nickname: 5 }, 'nickname'], [{ room: 'Not A Room' }, 'room'], [{ room: null }, 'room'],
  ]) {
    const e = await refused(kim, 'tool.knock', { room: 'vault', ...fields }, 'InvalidArgumentError');
    assert.equal(e.details.field, field, JSON.stringify(e));
  }
  // The note counts characters, not bytes: 500 two-byte or four-byte characters fit, 501 do not.
  await refused(kim, 'tool.knock', { room: 'vault', note: 'é'.repeat(501) }, 'InvalidArgumentError');
  await refused(kim, 'tool.deny', { room: 'vault', knockId: UNKNOWN_KNOCK }, 'NotInRoomError');
  await quiet(olga);  // no refused knock reached the owner
  const wide = await (await session(server)).ok('tool.knock', { room: 'vault', note: '😀'.repeat(500) });
  assert.equal((await event(olga, 'vault', 'knock')).note, '😀'.repeat(500));
  await olga.ok('tool.deny', { room: 'vault', knockId: wide.knockId });
  const long = await kim.ok('tool.knock', { room: 'vault', nickname: 'olga2', note: 'é'.repeat(500) });
  assert.equal((await event(olga, 'vault', 'knock')).note, 'é'.repeat(500));
  // The asked nickname is taken meanwhile: approve admits under a free one.
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  const sneak = await session(server);
  await sneak.ok('tool.join_room', { room: 'vault', nickname: 'OLGA2', invite: inv.code });
  const a = await olga.ok('tool.approve', { room: 'vault', knockId: long.knockId });
  assert.notEqual(a.nickname.toLowerCase(), 'olga2');
  const approved = await event(kim, 'vault', 'approved');
  assert.equal(approved.nickname, a.nickname);
  assert.equal(approved.membersCount, 3);
  assert.deepEqual((await olga.ok('tool.who_is_here', { room: 'vault' })).nicknames, ['olga', 'OLGA2', a.nickname]);
  for (const c of [olga, kim, sneak]) await c.close();
});

test('the 6th knock from one principal within a minute is RateLimitedError; so is a 21st pending knock in one room', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const rooms = Array.from({ length: 7 }, (_, i) => `vault-${i}`);
  for (const room of rooms) await olga.ok('tool.create_room', { room, visibility: 'private' });
  const kim = await session(server);
  for (let i = 0; i < 5; i++) await kim.ok('tool.knock', { room: rooms[i] });
  const limited = await refused(kim, 'tool.knock', { room: rooms[5] }, 'RateLimitedError');
  assert.ok(limited.details.retryAfterMs > 0 && limited.details.retryAfterMs <= 12000, JSON.stringify(limited));
  // The refused knock reached nobody; the five did.
  const knocks = [];
  for (let i = 0; i < 5; i++) knocks.push(await event(olga, rooms[i], 'knock'));
  await quiet(olga);
  // Knocking again on a pending room is not a new knock and is not limited.
  assert.equal((await kim.ok('tool.knock', { room: rooms[0] })).knockId, knocks[0].knockId);

  // 20 pending knocks in one room, from 20 sessions: the 21st is refused.
  const knockers = [];
  for (let i = 0; i < 21; i++) knockers.push(await session(server));
  for (let i = 0; i < 20; i++) await knockers[i].ok('tool.knock', { room: rooms[6] });
  await refused(knockers[20], 'tool.knock', { room: rooms[6] }, 'RateLimitedError');
  // Answering one frees a place.
  const first = await event(olga, rooms[6], 'knock');
  await olga.ok('tool.deny', { room: rooms[6], knockId: first.knockId });
  await knockers[20].ok('tool.knock', { room: rooms[6] });
  for (const c of [olga, kim, ...knockers]) await c.close();
});

test('an anonymous owner\'s private room goes when its session ends and nobody is in it', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const sam = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.join('hall', 'olga');
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  const kim = await session(server);
  await kim.ok('tool.knock', { room: 'vault' });
  await olga.close(1000);
  // Gone: the name is free to create again, the invite names no room, the knock's room is gone.
  await refused(sam, 'tool.join_room', { room: 'vault', invite: inv.code }, 'InviteInvalidError');
  await refused(kim, 'tool.knock', { room: 'vault' }, 'NotFoundError');
  assert.deepEqual(await sam.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'sam' }),
    { room: 'vault', nickname: 'sam', membersCount: 1, role: 'owner', visibility: 'private' });
  // The public room it made stays (kept as before), ownerless until someone is in it.
  assert.deepEqual((await kim.ok('tool.list_rooms')).available, [{ name: 'hall', membersCount: 0 }]);
  for (const c of [sam, kim]) await c.close();
});

test('when the last owner\'s session ends, the member present longest becomes owner and hears so; the room stays', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.join('hall', 'olga');
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  const bob = await session(server);
  const carol = await session(server);
  const dan = await session(server);
  await carol.ok('tool.join_room', { room: 'vault', nickname: 'carol', invite: inv.code });  // longest present
  await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob', invite: inv.code });
  await dan.join('hall', 'dan');
  await bob.join('hall', 'bob');
  await olga.close(1000);
  assert.deepEqual(await event(carol, 'vault', 'role'), { _tag: 'room.event', room: 'vault', kind: 'role', role: 'owner' });
  assert.deepEqual(await event(dan, 'hall', 'role'), { _tag: 'room.event', room: 'hall', kind: 'role', role: 'owner' });
  await quiet(bob);
  assert.deepEqual((await bob.ok('tool.who_is_here', { room: 'vault' })).members.map((m) => [m.nickname, m.role]),
    [['carol', 'owner'], ['bob', 'member']]);
  // The new owner can act as one; the room was not deleted.
  await carol.ok('tool.invite', { room: 'vault' });
  await refused(dan, 'tool.create_room', { room: 'vault', visibility: 'public' }, 'RoomExistsError');
  await dan.ok('tool.kick', { room: 'hall', nickname: 'bob' });
  await event(bob, 'hall', 'kicked');
  for (const c of [bob, carol, dan]) await c.close();
});

test('create_room counts against the room cap and the creation budget like an implicit creation', async (t) => {
  const server = await startServer(t, { args: ['--max-rooms', '2'] });
  const a = await session(server);
  await a.ok('tool.create_room', { room: 'one', visibility: 'private' });
  await a.join('two');
  const capped = await refused(a, 'tool.create_room', { room: 'three', visibility: 'private' }, 'RoomLimitError');
  assert.deepEqual(capped.details, { maxRooms: 2 });
  const fast = await startServer(t);
  const b = await session(fast);
  for (let i = 0; i < 10; i++) await b.ok('tool.create_room', { room: `p-${i}`, visibility: 'private' });
  for (let i = 10; i < 20; i++) await b.join(`q-${i}`);
  const limited = await refused(b, 'tool.create_room', { room: 'one-more', visibility: 'public' }, 'RateLimitedError');
  assert.ok(limited.details.retryAfterMs > 0, JSON.stringify(limited));
  assert.equal((await b.ok('tool.list_rooms')).joined.length, 20);
  for (const c of [a, b]) await c.close();
});

test('100 live invites in a room is the most: the next is InvalidArgumentError whoever asks', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const owners = [olga];
  const inv = await olga.ok('tool.invite', { room: 'vault' });  // 1 live
  for (let i = 1; i < 11; i++) {
    const c = await session(server);
    await c.ok('tool.join_room', { room: 'vault', nickname: `o${i}`, invite: inv.code });
    await olga.ok('tool.set_role', { room: 'vault', nickname: `o${i}`, role: 'owner' });
    owners.push(c);
  }
  let made = 1;
  for (let i = 0; i < owners.length && made < 100; i++) {
    const n = Math.min(i === 0 ? 9 : 10, 100 - made);
    for (let k = 0; k < n; k++) await owners[i].ok('tool.invite', { room: 'vault', maxUses: 1 });
    made += n;
  }
  assert.equal(made, 100);
  const full = await refused(owners[10], 'tool.invite', { room: 'vault' }, 'InvalidArgumentError');
  assert.equal(full.details.field, 'room', JSON.stringify(full));
  for (const c of owners) await c.close();
});

test('a knock is withdrawn when the knocker\'s session ends; deny by a non-owner is ForbiddenError', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  const mona = await session(server);
  await mona.ok('tool.join_room', { room: 'vault', nickname: 'mona', invite: inv.code });
  const kim = await session(server);
  const k = await kim.ok('tool.knock', { room: 'vault', nickname: 'kim' });
  await event(olga, 'vault', 'knock');
  assert.deepEqual((await refused(mona, 'tool.deny', { room: 'vault', knockId: k.knockId }, 'ForbiddenError')).details,
    { room: 'vault', role: 'member' });
  await kim.close(1000);
  await refused(olga, 'tool.approve', { room: 'vault', knockId: k.knockId }, 'NotFoundError');
  assert.deepEqual((await olga.ok('tool.who_is_here', { room: 'vault' })).nicknames, ['olga', 'mona']);
  for (const c of [olga, mona]) await c.close();
});

test('an anonymous owner that left its private room still takes it along when its session ends', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const sam = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.ok('tool.leave_room', { room: 'vault' });
  // Still its owner while its session lives: it rejoins without an invite.
  assert.equal((await olga.join('vault', 'olga')).role, 'owner');
  await olga.ok('tool.leave_room', { room: 'vault' });
  await olga.close(1000);
  assert.equal((await sam.ok('tool.create_room', { room: 'vault', visibility: 'public' })).role, 'owner');
  await sam.close();
});
