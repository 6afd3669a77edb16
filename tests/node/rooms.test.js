// SPDX-License-Identifier: MIT
// Room-flood defences end to end: the creation budget, --max-rooms, list paging, the room TTL, `room list|delete`.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { eventually, metrics, runTool, session, startServer, stopServer, tempDir } = require('./harness');

const name = (i) => `room-${String(i).padStart(4, '0')}`;

test('one client creating rooms fast is refused with RateLimitedError after its burst; nothing is created, joins go on', async (t) => {
  const server = await startServer(t);
  const a = await session(server);
  for (let i = 0; i < 20; i++) await a.join(name(i));
  const refused = await a.call('tool.join_room', { room: 'one-too-many' });
  assert.equal(refused._tag, 'tool.err', JSON.stringify(refused));
  assert.equal(refused.code, 'RateLimitedError');
  assert.ok(refused.details.retryAfterMs > 0 && refused.details.retryAfterMs <= 6000, JSON.stringify(refused.details));
  const listed = await a.ok('tool.list_rooms');
  assert.equal(listed.joined.length, 20);
  assert.ok(!listed.available.some((r) => r.name === 'one-too-many'));
  // Joining a room that exists is never limited, and another session has a budget of its own.
  const b = await session(server);
  assert.equal((await b.join(name(3))).membersCount, 2);
  await b.join('b-own');
  const m = await metrics(server.port);
  assert.equal(m.parley_room_creations_refused_total, 1);
  assert.equal(m.parley_rooms, 21);
});

test('--max-rooms 3: a join that would create a fourth room gets RoomLimitError; existing rooms still take members', async (t) => {
  const server = await startServer(t, { args: ['--max-rooms', '3'] });
  const a = await session(server);
  for (const r of ['one', 'two', 'three']) await a.join(r);
  const refused = await a.call('tool.join_room', { room: 'four' });
  assert.equal(refused.code, 'RoomLimitError', JSON.stringify(refused));
  assert.deepEqual(refused.details, { maxRooms: 3 });
  const b = await session(server);
  assert.equal((await b.join('two')).membersCount, 2);
  assert.equal((await b.ok('tool.list_rooms')).available.length, 2);
});

test('list_rooms pages with limit and cursor through every room once; who_is_here too; bad values are refused', async (t) => {
  const server = await startServer(t, { args: ['--room-rate-capacity', '100'] });
  const a = await session(server);
  const b = await session(server);
  for (let i = 0; i < 7; i++) await (i % 2 ? b : a).join(name(i));
  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const page = await a.ok('tool.list_rooms', cursor === undefined ? { limit: 3 } : { limit: 3, cursor });
    pages++;
    assert.ok(page.joined.length + page.available.length <= 3);
    seen.push(...page.joined.map((r) => r.name), ...page.available.map((r) => r.name));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  assert.equal(pages, 3);
  assert.deepEqual(seen.sort(), Array.from({ length: 7 }, (_, i) => name(i)));
  // Without a limit: the old shape, and no nextCursor when all fit.
  const all = await a.ok('tool.list_rooms');
  assert.deepEqual(Object.keys(all).sort(), ['available', 'joined']);

  for (const [fields, field] of [[{ limit: 0 }, 'limit'], [{ limit: 501 }, 'limit'], [{ limit: '3' }, 'limit'],
                                 [{ cursor: 'Not A Room' }, 'cursor'], [{ cursor: 7 }, 'cursor']]) {
    const bad = await a.call('tool.list_rooms', fields);
    assert.equal(bad.code, 'InvalidArgumentError', JSON.stringify(bad));
    assert.equal(bad.details.field, field);
  }

  for (const nick of ['n1', 'n2', 'n3']) await (await session(server)).join(name(0), nick);
  const first = await a.ok('tool.who_is_here', { room: name(0), limit: 2 });
  assert.equal(first.nicknames.length, 2);
  assert.ok(typeof first.nextCursor === 'string');
  const rest = await a.ok('tool.who_is_here', { room: name(0), limit: 2, cursor: first.nextCursor });
  assert.deepEqual(rest.nicknames, ['n2', 'n3']);
  assert.equal(rest.nextCursor, undefined);
  const bad = await a.call('tool.who_is_here', { room: name(0), cursor: 'nope' });
  assert.deepEqual(bad.details, { field: 'cursor', rule: 'a nextCursor from a previous answer' });
});

test('--room-ttl 1: an empty room nobody wrote to goes; one with a message stays, and both facts survive a restart', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const server = await startServer(t, { dir, db, args: ['--room-ttl', '1'] });
  const a = await session(server);
  await a.join('fleeting');
  await a.join('lasting');
  await a.sendMessage('lasting', 'hello');
  await a.ok('tool.leave_room', { room: 'fleeting' });
  await a.ok('tool.leave_room', { room: 'lasting' });
  await eventually(async () => (await metrics(server.port)).parley_rooms_expired_total === 1, 4000, 'the room to expire');
  const listed = await a.ok('tool.list_rooms');
  assert.deepEqual(listed.available.map((r) => r.name), ['lasting']);
  await a.close();
  await stopServer(server);
  const list = runTool(dir, ['room', 'list', '--db', db]);
  assert.equal(list.status, 0, list.stderr);
  assert.doesNotMatch(list.stdout, /fleeting/);
  assert.match(list.stdout, /^lasting\s/m);
});

test('room list and room delete work on a stopped server\'s database; deleting an unknown room fails', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  let server = await startServer(t, { dir, db });
  const a = await session(server);
  await a.join('keep');
  await a.join('drop');
  await a.sendMessage('drop', 'one');
  await a.sendMessage('drop', 'two');
  // While the server runs it holds its rooms in memory: deleting one underneath it is refused.
  const running = runTool(dir, ['room', 'delete', 'drop', '--db', db]);
  assert.equal(running.status, 1, running.stderr);
  assert.match(running.stderr, /a server is running on .*stop it first/);
  assert.match(runTool(dir, ['room', 'list', '--db', db]).stdout, /^drop\s/m);
  await a.close();
  await stopServer(server);

  const list = runTool(dir, ['room', 'list', '--db', db]);
  assert.equal(list.status, 0, list.stderr);
  const rows = list.stdout.trim().split('\n');
  assert.match(rows[0], /^ROOM\s+CREATED\s+MAX SEQ$/);
  assert.match(rows[1], /^drop\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+(\d+)$/);
  assert.ok(Number(/(\d+)$/.exec(rows[1])[1]) >= 2);  // seqs are reserved in blocks: at least what was sent
  assert.match(rows[2], /^keep\s+\S+\s+0$/);

  const unknown = runTool(dir, ['room', 'delete', 'nowhere', '--db', db]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /no room nowhere/);
  assert.equal(runTool(dir, ['room', 'delete', 'Bad Name', '--db', db]).status, 2);
  const deleted = runTool(dir, ['room', 'delete', 'drop', '--db', db]);
  assert.equal(deleted.status, 0, deleted.stderr);
  assert.doesNotMatch(runTool(dir, ['room', 'list', '--db', db]).stdout, /drop/);

  // Created again, its seqs continue instead of starting over.
  server = await startServer(t, { dir, db });
  const b = await session(server);
  assert.deepEqual((await b.ok('tool.list_rooms')).available.map((r) => r.name), ['keep']);
  await b.join('drop');
  const sent = await b.sendMessage('drop', 'three');
  assert.ok(sent.seq > 2, JSON.stringify(sent));
});
