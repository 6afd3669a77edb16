// SPDX-License-Identifier: MIT
// Owners' tools end to end (docs/protocol.md#rooms-people-control): kick, ban, unban, set_role, their refusals, bans of a
// token's principal across all its sessions, and roles and bans of a token label surviving a restart.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { connect, eventually, issueToken, metrics, session, sleep, startServer, stopServer, tempDir } = require('./harness');
const { event, quiet, refused, roles } = require('./room_checks');

// Tokens are checked only off loopback; there every session needs one.
const PUBLIC = ['--bind', '0.0.0.0'];

test('kick: the target hears "kicked" and is out; it may rejoin a public room, a private one only with a new invite', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const bob = await session(server);
  const carol = await session(server);
  await olga.join('hall', 'olga');
  await bob.join('hall', 'bob');
  await carol.join('hall', 'carol');
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const inv = await olga.ok('tool.invite', { room: 'vault', maxUses: 1 });
  await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob', invite: inv.code });

  assert.deepEqual(await olga.ok('tool.kick', { room: 'hall', nickname: 'BOB' }), { room: 'hall', nickname: 'bob' });
  assert.deepEqual(await event(bob, 'hall', 'kicked'), { _tag: 'room.event', room: 'hall', kind: 'kicked' });
  await quiet(carol);
  assert.deepEqual(await roles(carol, 'hall'), [['olga', 'owner'], ['carol', 'member']]);
  await refused(bob, 'tool.send_message', { room: 'hall', body: 'x' }, 'NotInRoomError');
  await refused(bob, 'tool.who_is_here', { room: 'hall' }, 'NotInRoomError');
  // Messages after the kick do not reach it.
  await olga.sendMessage('hall', 'after');
  await carol.message('hall');
  await quiet(bob);
  assert.equal((await bob.join('hall', 'bob')).role, 'member');

  await olga.ok('tool.kick', { room: 'vault', nickname: 'bob' });
  await event(bob, 'vault', 'kicked');
  await refused(bob, 'tool.join_room', { room: 'vault' }, 'RoomPrivateError');
  assert.ok(!(await bob.ok('tool.list_rooms')).available.some((r) => r.name === 'vault'), 'a kicked principal still sees the private room');
  const again = await olga.ok('tool.invite', { room: 'vault' });
  assert.equal((await bob.ok('tool.join_room', { room: 'vault', invite: again.code })).role, 'member');
  for (const c of [olga, bob, carol]) await c.close();
});

test('ban and unban: the banned cannot rejoin under any nickname nor knock; unban names the nickname it had', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const bob = await session(server);
  const carol = await session(server);
  await olga.join('hall', 'olga');
  await bob.join('hall', 'bob');
  await carol.join('hall', 'carol');
  assert.deepEqual(await olga.ok('tool.ban', { room: 'hall', nickname: 'bob' }), { room: 'hall', nickname: 'bob' });
  assert.deepEqual(await event(bob, 'hall', 'banned'), { _tag: 'room.event', room: 'hall', kind: 'banned' });
  assert.deepEqual(await roles(olga, 'hall'), [['olga', 'owner'], ['carol', 'member']]);
  for (const nickname of [undefined, 'bob', 'someone-else']) {
    const e = await refused(bob, 'tool.join_room', nickname ? { room: 'hall', nickname } : { room: 'hall' }, 'BannedError');
    assert.deepEqual(e.details, { room: 'hall' });
  }
  // A private room: banned is banned, invite or not, knock or not.
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  await bob.ok('tool.join_room', { room: 'vault', nickname: 'bobby', invite: inv.code });
  await olga.ok('tool.ban', { room: 'vault', nickname: 'bobby' });
  await event(bob, 'vault', 'banned');
  await refused(bob, 'tool.join_room', { room: 'vault', invite: inv.code }, 'BannedError');
  await refused(bob, 'tool.join_room', { room: 'vault', nickname: 'new-name', invite: (await olga.ok('tool.invite', { room: 'vault' })).code }, 'BannedError');
  await refused(bob, 'tool.knock', { room: 'vault' }, 'BannedError');
  await quiet(olga);  // the refused knock reached no owner

  // unban: the nickname it had when banned, in any case; an unknown one is NotFoundError and lifts nothing.
  assert.deepEqual((await refused(olga, 'tool.unban', { room: 'hall', nickname: 'carol' }, 'NotFoundError')).details,
    { room: 'hall', nickname: 'carol' });
  await refused(olga, 'tool.unban', { room: 'hall', nickname: 'bobby' }, 'NotFoundError');
  await refused(bob, 'tool.join_room', { room: 'hall' }, 'BannedError');
  await refused(carol, 'tool.unban', { room: 'hall', nickname: 'bob' }, 'ForbiddenError');
  await refused(bob, 'tool.unban', { room: 'hall', nickname: 'bob' }, 'NotInRoomError');
  assert.deepEqual(await olga.ok('tool.unban', { room: 'hall', nickname: 'BOB' }), { room: 'hall', nickname: 'bob' });
  await refused(olga, 'tool.unban', { room: 'hall', nickname: 'bob' }, 'NotFoundError');
  assert.equal((await bob.join('hall', 'robert')).nickname, 'robert');
  // Unbanned from a private room, it still needs an invite: the ban took its role.
  await olga.ok('tool.unban', { room: 'vault', nickname: 'bobby' });
  await refused(bob, 'tool.join_room', { room: 'vault' }, 'RoomPrivateError');
  await bob.ok('tool.join_room', { room: 'vault', invite: inv.code });
  for (const c of [olga, bob, carol]) await c.close();
});

test('set_role: the target hears its new role; watchers cannot send, members can, a new owner can moderate', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const bob = await session(server);
  const carol = await session(server);
  await olga.join('hall', 'olga');
  await bob.join('hall', 'bob');
  await carol.join('hall', 'carol');
  assert.deepEqual(await olga.ok('tool.set_role', { room: 'hall', nickname: 'Bob', role: 'watcher' }), { room: 'hall', nickname: 'bob', role: 'watcher' });
  assert.deepEqual(await event(bob, 'hall', 'role'), { _tag: 'room.event', room: 'hall', kind: 'role', role: 'watcher' });
  await quiet(carol);
  assert.deepEqual(await roles(carol, 'hall'), [['olga', 'owner'], ['bob', 'watcher'], ['carol', 'member']]);
  assert.equal((await bob.ok('tool.list_rooms')).joined[0].role, 'watcher');
  assert.deepEqual((await refused(bob, 'tool.send_message', { room: 'hall', body: 'x' }, 'ForbiddenError')).details, { room: 'hall', role: 'watcher' });
  await olga.sendMessage('hall', 'watchers read');
  assert.equal((await bob.message('hall')).body, 'watchers read');
  assert.deepEqual((await refused(bob, 'tool.kick', { room: 'hall', nickname: 'carol' }, 'ForbiddenError')).details, { room: 'hall', role: 'watcher' });

  await olga.ok('tool.set_role', { room: 'hall', nickname: 'bob', role: 'member' });
  assert.equal((await event(bob, 'hall', 'role')).role, 'member');
  assert.equal((await bob.sendMessage('hall', 'member again')).seq, 2);
  await olga.ok('tool.set_role', { room: 'hall', nickname: 'bob', role: 'owner' });
  assert.equal((await event(bob, 'hall', 'role')).role, 'owner');
  // Two owners: the new one moderates, including the old one.
  await bob.ok('tool.set_role', { room: 'hall', nickname: 'carol', role: 'watcher' });
  await event(carol, 'hall', 'role');
  await bob.ok('tool.set_role', { room: 'hall', nickname: 'olga', role: 'member' });
  assert.equal((await event(olga, 'hall', 'role')).role, 'member');
  await refused(olga, 'tool.set_role', { room: 'hall', nickname: 'bob', role: 'member' }, 'ForbiddenError');
  assert.deepEqual(await roles(carol, 'hall'), [['olga', 'member'], ['bob', 'owner'], ['carol', 'watcher']]);
  for (const c of [olga, bob, carol]) await c.close();
});

test('owners\' tools refuse yourself, unknown nicknames, non-owners, strangers and bad types, and change nothing', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const bob = await session(server);
  const sam = await session(server);
  await olga.join('hall', 'olga');
  await bob.join('hall', 'bob');
  await sam.join('elsewhere', 'sam');
  const before = { olga: await olga.ok('tool.list_rooms'), who: await olga.ok('tool.who_is_here', { room: 'hall' }), sam: await sam.ok('tool.list_rooms') };

  const cases = [];
  for (const tag of ['tool.kick', 'tool.ban']) {
    cases.push([olga, tag, { room: 'hall', nickname: 'olga' }, 'InvalidArgumentError', { field: 'nickname' }]);
    cases.push([olga, tag, { room: 'hall', nickname: 'OLGA' }, 'InvalidArgumentError', { field: 'nickname' }]);
    cases.push([olga, tag, { room: 'hall', nickname: 'nobody' }, 'NotFoundError', { room: 'hall', nickname: 'nobody' }]);
    cases.push([olga, tag, { room: 'hall', nickname: 'sam' }, 'NotFoundError']);  // in another room only
    cases.push([bob, tag, { room: 'hall', nickname: 'olga' }, 'ForbiddenError', { room: 'hall', role: 'member' }]);
    cases.push([sam, tag, { room: 'hall', nickname: 'bob' }, 'NotInRoomError', { room: 'hall' }]);
    cases.push([olga, tag, { room: 'nowhere', nickname: 'bob' }, 'NotInRoomError', { room: 'nowhere' }]);
    cases.push([olga, tag, { room: 'hall', nickname: 42 }, 'InvalidArgumentError', { field: 'nickname' }]);
    cases.push([olga, tag, { room: 'hall' }, 'InvalidArgumentError', { field: 'nickname' }]);
    cases.push([olga, tag, { room: 'hall', nickname: 'no spaces' }, 'InvalidArgumentError', { field: 'nickname' }]);
    cases.push([olga, tag, { room: ['hall'], nickname: 'bob' }, 'InvalidArgumentError', { field: 'room' }]);
  }
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'olga', role: 'member' }, 'InvalidArgumentError', { field: 'nickname' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'olga', role: 'owner' }, 'InvalidArgumentError', { field: 'nickname' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'nobody', role: 'member' }, 'NotFoundError', { room: 'hall', nickname: 'nobody' }]);
  cases.push([bob, 'tool.set_role', { room: 'hall', nickname: 'olga', role: 'watcher' }, 'ForbiddenError', { room: 'hall', role: 'member' }]);
  cases.push([bob, 'tool.set_role', { room: 'hall', nickname: 'bob', role: 'owner' }, 'ForbiddenError', { room: 'hall', role: 'member' }]);
  cases.push([sam, 'tool.set_role', { room: 'hall', nickname: 'bob', role: 'owner' }, 'NotInRoomError', { room: 'hall' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'bob', role: 'admin' }, 'InvalidArgumentError', { field: 'role' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'bob', role: 1 }, 'InvalidArgumentError', { field: 'role' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: 'bob' }, 'InvalidArgumentError', { field: 'role' }]);
  cases.push([olga, 'tool.set_role', { room: 'hall', nickname: true, role: 'member' }, 'InvalidArgumentError', { field: 'nickname' }]);
  cases.push([olga, 'tool.unban', { room: 'hall', nickname: 'nobody' }, 'NotFoundError', { room: 'hall', nickname: 'nobody' }]);
  cases.push([olga, 'tool.unban', { room: 'hall', nickname: {} }, 'InvalidArgumentError', { field: 'nickname' }]);
  cases.push([bob, 'tool.unban', { room: 'hall', nickname: 'nobody' }, 'ForbiddenError', { room: 'hall', role: 'member' }]);
  for (const [who, tag, fields, code, details] of cases) {
    const e = await refused(who, tag, fields, code);
    if (details) for (const [k, v] of Object.entries(details)) assert.equal(e.details[k], v, `${tag} ${JSON.stringify(fields)} → ${JSON.stringify(e)}`);
  }
  for (const c of [olga, bob, sam]) await quiet(c);
  assert.deepEqual(await olga.ok('tool.list_rooms'), before.olga);
  assert.deepEqual(await olga.ok('tool.who_is_here', { room: 'hall' }), before.who);
  assert.deepEqual(await sam.ok('tool.list_rooms'), before.sam);
  assert.equal((await bob.sendMessage('hall', 'still a member')).seq, 1);
  for (const c of [olga, bob, sam]) await c.close();
});

test('room.event frames for a detached session arrive after its resume\'s replay', async (t) => {
  const server = await startServer(t);
  const olga = await session(server);
  const bob = await session(server);
  await olga.join('hall', 'olga');
  await bob.join('hall', 'bob');
  await bob.terminate();
  // Detached first: the drop reaches the hub from bob's I/O thread, the set_role from olga's,
  // in either order; an event handed to a connection that is dropping is not held.
  await eventually(async () => (await metrics(server.port)).parley_sessions_attached === 1, undefined, 'bob detached');
  await olga.ok('tool.set_role', { room: 'hall', nickname: 'bob', role: 'watcher' });
  await olga.sendMessage('hall', 'while away');
  const back = await connect(server);
  const h = await back.hello({ resume: { sessionId: bob.session.sessionId, reconnectToken: bob.session.reconnectToken, lastAckedSeqByRoom: { hall: 0 } } });
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  assert.equal((await back.message('hall')).body, 'while away');
  assert.deepEqual(await event(back, 'hall', 'role'), { _tag: 'room.event', room: 'hall', kind: 'role', role: 'watcher' });
  await quiet(back);
  assert.equal((await back.ok('tool.list_rooms')).joined[0].role, 'watcher');
  for (const c of [olga, back]) await c.close();
});

test('a ban applies to the token\'s principal: every session of it goes, and none may come back under any nickname', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const tokens = { olga: issueToken(dir, db, 'olga'), bob: issueToken(dir, db, 'bob'), carol: issueToken(dir, db, 'carol') };
  const server = await startServer(t, { dir, db, args: PUBLIC });
  const as = (who) => session(server, { authToken: tokens[who] });
  const olga = await as('olga');
  const bob1 = await as('bob');
  const bob2 = await as('bob');
  const carol = await as('carol');
  await olga.join('hall', 'olga');
  await bob1.join('hall', 'bob');
  await bob2.join('hall', 'bob-laptop');
  await carol.join('hall', 'carol');
  await olga.ok('tool.ban', { room: 'hall', nickname: 'bob-laptop' });
  await event(bob1, 'hall', 'banned');
  await event(bob2, 'hall', 'banned');
  await quiet(carol);
  assert.deepEqual(await roles(olga, 'hall'), [['olga', 'owner'], ['carol', 'member']]);
  const bob3 = await as('bob');
  await refused(bob3, 'tool.join_room', { room: 'hall', nickname: 'fresh' }, 'BannedError');
  await refused(bob1, 'tool.join_room', { room: 'hall' }, 'BannedError');
  // A kick takes the principal too (roles are the principal's), every session of it, but no ban.
  await olga.ok('tool.unban', { room: 'hall', nickname: 'bob-laptop' });
  await bob1.join('hall', 'bob');
  await bob2.join('hall', 'bob-laptop');
  await olga.ok('tool.kick', { room: 'hall', nickname: 'bob' });
  await event(bob1, 'hall', 'kicked');
  await event(bob2, 'hall', 'kicked');
  assert.deepEqual(await roles(olga, 'hall'), [['olga', 'owner'], ['carol', 'member']]);
  // A role belongs to the principal: the same token in another session holds it too.
  await bob2.join('hall', 'bob-laptop');
  await olga.ok('tool.set_role', { room: 'hall', nickname: 'bob-laptop', role: 'watcher' });
  await event(bob2, 'hall', 'role');
  assert.equal((await bob1.join('hall', 'bob')).role, 'watcher');
  for (const c of [olga, bob1, bob2, bob3, carol]) await c.close();
});

test('roles, bans, invites and privacy of a token label survive a restart on the same database', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const tokens = {};
  for (const who of ['olga', 'bob', 'carol', 'dave', 'erin']) tokens[who] = issueToken(dir, db, who);
  let server = await startServer(t, { dir, db, args: PUBLIC });
  let as = (who) => session(server, { authToken: tokens[who] });
  let olga = await as('olga');
  let bob = await as('bob');
  let carol = await as('carol');
  let erin = await as('erin');
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.join('hall', 'olga');
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  const once = await olga.ok('tool.invite', { room: 'vault', maxUses: 1 });
  await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob', invite: inv.code });
  await erin.ok('tool.join_room', { room: 'vault', nickname: 'erin', invite: inv.code });
  await olga.ok('tool.set_role', { room: 'vault', nickname: 'bob', role: 'watcher' });
  await olga.ok('tool.set_role', { room: 'vault', nickname: 'erin', role: 'owner' });
  await carol.join('hall', 'carol');
  await olga.ok('tool.ban', { room: 'hall', nickname: 'carol' });
  await carol.ok('tool.join_room', { room: 'vault', nickname: 'carol', invite: once.code });
  await olga.ok('tool.ban', { room: 'vault', nickname: 'carol' });
  for (const c of [olga, bob, carol, erin]) await c.close();
  assert.deepEqual(await stopServer(server), { code: 0, signal: null });

  server = await startServer(t, { dir, db, args: PUBLIC });
  as = (who) => session(server, { authToken: tokens[who] });
  olga = await as('olga');
  bob = await as('bob');
  carol = await as('carol');
  erin = await as('erin');
  const dave = await as('dave');
  // The private room is still private and listed only to those admitted.
  assert.deepEqual((await bob.ok('tool.list_rooms')).available, [
    { name: 'hall', membersCount: 0 }, { name: 'vault', membersCount: 0, visibility: 'private' }]);
  assert.deepEqual((await dave.ok('tool.list_rooms')).available, [{ name: 'hall', membersCount: 0 }]);
  await refused(dave, 'tool.join_room', { room: 'vault' }, 'RoomPrivateError');
  await refused(dave, 'tool.create_room', { room: 'vault', visibility: 'public' }, 'RoomExistsError');
  // Roles come back without an invite.
  assert.deepEqual(await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob' }),
    { room: 'vault', nickname: 'bob', membersCount: 1, role: 'watcher', visibility: 'private' });
  assert.equal((await olga.join('vault', 'olga')).role, 'owner');
  assert.equal((await erin.join('vault', 'erin')).role, 'owner');
  await refused(bob, 'tool.send_message', { room: 'vault', body: 'x' }, 'ForbiddenError');
  // Bans come back, under any nickname; the used-up invite stays used up, the other still works.
  await refused(carol, 'tool.join_room', { room: 'hall', nickname: 'carol2' }, 'BannedError');
  await refused(carol, 'tool.join_room', { room: 'vault', invite: inv.code }, 'BannedError');
  await refused(dave, 'tool.join_room', { room: 'vault', invite: once.code }, 'InviteInvalidError');
  // The owner of the public room is its durable principal, and can lift the ban.
  assert.equal((await olga.join('hall', 'olga')).role, 'owner');
  assert.deepEqual(await olga.ok('tool.unban', { room: 'hall', nickname: 'carol' }), { room: 'hall', nickname: 'carol' });
  assert.equal((await carol.join('hall', 'carol')).role, 'member');
  assert.equal((await dave.ok('tool.join_room', { room: 'vault', invite: inv.code })).role, 'member');
  for (const c of [olga, bob, carol, erin, dave]) await c.close();
});

test('a private room whose only owner was an anonymous session does not outlive a restart', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  let server = await startServer(t, { dir, db });
  const olga = await session(server);
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  await olga.sendMessage('vault', 'written');
  await olga.join('hall', 'olga');
  await olga.sendMessage('hall', 'kept');
  assert.deepEqual(await stopServer(server), { code: 0, signal: null });
  server = await startServer(t, { dir, db });
  const sam = await session(server);
  assert.deepEqual((await sam.ok('tool.list_rooms')).available, [{ name: 'hall', membersCount: 0 }]);
  assert.equal((await sam.ok('tool.create_room', { room: 'vault', visibility: 'private' })).role, 'owner');
  await sam.close();
});

test('knock and invite budgets belong to the token\'s principal, whichever of its sessions spends them', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const tokens = { olga: issueToken(dir, db, 'olga'), kim: issueToken(dir, db, 'kim') };
  const server = await startServer(t, { dir, db, args: PUBLIC });
  const olga1 = await session(server, { authToken: tokens.olga });
  const olga2 = await session(server, { authToken: tokens.olga });
  const rooms = Array.from({ length: 6 }, (_, i) => `vault-${i}`);
  for (const room of rooms) await olga1.ok('tool.create_room', { room, visibility: 'private' });
  await olga2.join('vault-0');  // the same principal: an owner there too
  for (let i = 0; i < 6; i++) await olga1.ok('tool.invite', { room: 'vault-0' });
  for (let i = 0; i < 4; i++) await olga2.ok('tool.invite', { room: 'vault-0' });
  await refused(olga2, 'tool.invite', { room: 'vault-0' }, 'RateLimitedError');
  await refused(olga1, 'tool.invite', { room: 'vault-1' }, 'RateLimitedError');

  const kim1 = await session(server, { authToken: tokens.kim });
  const kim2 = await session(server, { authToken: tokens.kim });
  for (let i = 0; i < 3; i++) await kim1.ok('tool.knock', { room: rooms[i] });
  for (let i = 3; i < 5; i++) await kim2.ok('tool.knock', { room: rooms[i] });
  await refused(kim2, 'tool.knock', { room: rooms[5] }, 'RateLimitedError');
  for (const c of [olga1, olga2, kim1, kim2]) await c.close();
});

test('a token owner keeps its room while away: no heir when its session ends, and it is owner again when it comes back', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const tokens = { olga: issueToken(dir, db, 'olga'), bob: issueToken(dir, db, 'bob'), carol: issueToken(dir, db, 'carol') };
  const server = await startServer(t, { dir, db, args: PUBLIC });
  let olga = await session(server, { authToken: tokens.olga });
  const bob = await session(server, { authToken: tokens.bob });
  const carol = await session(server, { authToken: tokens.carol });
  await olga.ok('tool.create_room', { room: 'vault', visibility: 'private', nickname: 'olga' });
  const inv = await olga.ok('tool.invite', { room: 'vault' });
  await bob.ok('tool.join_room', { room: 'vault', nickname: 'bob', invite: inv.code });
  await carol.ok('tool.join_room', { room: 'vault', nickname: 'carol', invite: inv.code });
  await olga.close(1000);
  // Give a wrong heir time to be named, then check none was.
  assert.deepEqual(await roles(carol, 'vault'), [['bob', 'member'], ['carol', 'member']]);
  await sleep(300);
  await quiet(bob);
  await quiet(carol);
  assert.deepEqual((await refused(bob, 'tool.kick', { room: 'vault', nickname: 'carol' }, 'ForbiddenError')).details, { room: 'vault', role: 'member' });
  // The room was not deleted, and is still private.
  await refused(await session(server, { authToken: tokens.carol }), 'tool.create_room', { room: 'vault', visibility: 'public' }, 'RoomExistsError');
  olga = await session(server, { authToken: tokens.olga });
  assert.equal((await olga.join('vault', 'olga')).role, 'owner');
  await olga.ok('tool.kick', { room: 'vault', nickname: 'carol' });
  await event(carol, 'vault', 'kicked');
  assert.deepEqual(await roles(bob, 'vault'), [['bob', 'member'], ['olga', 'owner']]);
  for (const c of [olga, bob, carol]) await c.close();
});
