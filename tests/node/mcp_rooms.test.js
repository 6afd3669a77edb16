// SPDX-License-Identifier: MIT
// Rooms people control through parley-tools mcp: private rooms, invites, knocks, direct messages, kick, ban, roles, driven by the official MCP SDK client.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { BINARY, cleanEnv, sleep, startServer } = require('./harness');

// Generous: an ASan server and three bridges on two shared cores.
const WAIT_MS = 20000;

// One agent: an SDK client speaking to its own `parley-tools mcp` over stdio. The SDK
// checks each structuredContent against the tool's outputSchema, once tools/list was read.
async function agent(t, server) {
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp'],
    env: cleanEnv(server.dir, { PARLEY_SERVER: server.url }),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'parley-rooms-test', version: '1.0.0' }, { capabilities: {} });
  const pushes = [];
  client.fallbackNotificationHandler = async (n) => {
    if (n.method === 'notifications/claude/channel') pushes.push(n.params);
  };
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  const { tools } = await client.listTools();  // so the SDK validates results against the output schemas
  const a = {
    tools,
    pushes,
    call: (name, args = {}) => client.callTool({ name, arguments: args }),
    async ok(name, args = {}) {
      const r = await a.call(name, args);
      assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
      return r.structuredContent;
    },
    async refused(name, args, code) {
      const r = await a.call(name, args);
      assert.equal(r.isError, true, `${name} should fail with ${code}`);
      assert.equal(JSON.parse(r.content[1].text).code, code, JSON.stringify(r.content));
      return r;
    },
    // The first push that `pred` accepts, waiting for it.
    async push(pred, what) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const found = pushes.find(pred);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no ${what} push; got ${JSON.stringify(pushes)}`);
        await sleep(50);
      }
    },
    event(kind, room) {
      return a.push((p) => p.meta.event === kind && p.meta.room === room, `${kind} event in ${room}`);
    },
  };
  return a;
}

const metaKeysValid = (meta) => Object.keys(meta).every((k) => /^[A-Za-z0-9_]+$/.test(k));

test('tools/list offers the tools of rooms people control', async (t) => {
  const server = await startServer(t);
  const a = await agent(t, server);
  const { tools } = a;
  const names = tools.map((x) => x.name).sort();
  for (const name of ['approve', 'ban', 'create_room', 'deny', 'invite', 'kick', 'knock', 'set_role', 'unban'])
    assert.ok(names.includes(name), name);
  const byName = Object.fromEntries(tools.map((x) => [x.name, x]));
  assert.deepEqual(byName.create_room.inputSchema.properties.visibility.enum, ['public', 'private']);
  assert.equal(byName.send_message.inputSchema.properties.to.pattern, '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$');
  assert.ok(byName.join_room.inputSchema.properties.invite);
});

test('private room: invite, knock and approve, a direct message, watcher, set_role, kick, ban, hidden from list_rooms', async (t) => {
  const server = await startServer(t);
  const owner = await agent(t, server);
  const guest = await agent(t, server);
  const stranger = await agent(t, server);

  const made = await owner.ok('create_room', { room: 'den', visibility: 'private', nickname: 'owner' });
  assert.deepEqual(made, { room: 'den', nickname: 'owner', membersCount: 1, role: 'owner', visibility: 'private' });
  await owner.refused('create_room', { room: 'den', visibility: 'public' }, 'RoomExistsError');

  // An invite lets the guest in.
  await guest.refused('join_room', { room: 'den' }, 'RoomPrivateError');
  const invite = await owner.ok('invite', { room: 'den', max_uses: 1 });
  assert.equal(invite.code.length, 32);
  assert.equal(invite.maxUses, 1);
  const joined = await guest.ok('join_room', { room: 'den', nickname: 'guest', invite: invite.code });
  assert.equal(joined.role, 'member');
  assert.equal(joined.visibility, 'private');

  // A knock reaches the owner as a channel notification; approving lets the knocker in.
  const knock = await stranger.ok('knock', { room: 'den', nickname: 'knocker', note: 'I run the CI' });
  assert.equal(knock.status, 'pending');
  const asked = await owner.event('knock', 'den');
  assert.equal(asked.meta.knock_id, knock.knockId);
  assert.equal(asked.meta.nickname, 'knocker');
  assert.match(asked.content, /I run the CI/);
  assert.ok(metaKeysValid(asked.meta), JSON.stringify(asked.meta));
  assert.deepEqual(await owner.ok('approve', { room: 'den', knock_id: knock.knockId }),
                   { room: 'den', knockId: knock.knockId, nickname: 'knocker' });
  const approved = await stranger.event('approved', 'den');
  assert.equal(approved.meta.nickname, 'knocker');
  assert.equal(approved.meta.members_count, '3');
  assert.ok(metaKeysValid(approved.meta));
  await owner.refused('approve', { room: 'den', knock_id: knock.knockId }, 'NotFoundError');

  // A direct message reaches its recipient only.
  const sent = await owner.ok('send_message', { room: 'den', body: 'just for you', to: 'guest' });
  assert.equal(sent.to, 'guest');
  const dm = await guest.push((p) => p.content === 'just for you', 'the direct message');
  assert.equal(dm.meta.direct, 'true');
  assert.equal(dm.meta.to, 'guest');
  assert.equal(dm.meta.from_nickname, 'owner');
  assert.ok(metaKeysValid(dm.meta));
  await owner.ok('send_message', { room: 'den', body: 'to everyone' });
  await stranger.push((p) => p.content === 'to everyone', 'the room message');
  assert.ok(!stranger.pushes.some((p) => p.content === 'just for you'), 'a direct message reaches its recipient only');
  const read = await guest.ok('read_messages', { room: 'den' });
  const direct = read.messages.find((m) => m.body === 'just for you');
  assert.equal(direct.direct, true);
  assert.equal(direct.to, 'guest');

  // Roles: a watcher reads but cannot send.
  assert.deepEqual(await owner.ok('set_role', { room: 'den', nickname: 'knocker', role: 'watcher' }),
                   { room: 'den', nickname: 'knocker', role: 'watcher' });
  const role = await stranger.event('role', 'den');
  assert.equal(role.meta.role, 'watcher');
  await stranger.refused('send_message', { room: 'den', body: 'may I?' }, 'ForbiddenError');
  await stranger.refused('kick', { room: 'den', nickname: 'guest' }, 'ForbiddenError');

  // A third bridge outside the room does not see it.
  const outsider = await agent(t, server);
  await outsider.ok('join_room', { room: 'hall' });
  const listed = await outsider.ok('list_rooms');
  assert.ok(!listed.available.some((r) => r.name === 'den'), JSON.stringify(listed));
  assert.ok(listed.joined.some((r) => r.name === 'hall'));
  const mine = await owner.ok('list_rooms');
  assert.equal(mine.joined.find((r) => r.name === 'den').visibility, 'private');

  // Kick and ban arrive as events.
  assert.deepEqual(await owner.ok('kick', { room: 'den', nickname: 'knocker' }), { room: 'den', nickname: 'knocker' });
  await stranger.event('kicked', 'den');
  await stranger.refused('send_message', { room: 'den', body: 'x' }, 'NotInRoomError');
  await owner.ok('ban', { room: 'den', nickname: 'guest' });
  await guest.event('banned', 'den');
  await guest.refused('join_room', { room: 'den' }, 'BannedError');
  await owner.ok('unban', { room: 'den', nickname: 'guest' });
  await guest.refused('join_room', { room: 'den' }, 'RoomPrivateError');
});

test('a denied knock, and arguments refused before they leave the bridge', async (t) => {
  const server = await startServer(t);
  const owner = await agent(t, server);
  const other = await agent(t, server);
  await owner.ok('create_room', { room: 'den', visibility: 'private' });
  const knock = await other.ok('knock', { room: 'den' });
  const asked = await owner.event('knock', 'den');
  await owner.ok('deny', { room: 'den', knock_id: asked.meta.knock_id });
  assert.equal(knock.knockId, asked.meta.knock_id);
  await other.event('denied', 'den');
  for (const [name, args] of [
    ['create_room', { room: 'den2', visibility: 'secret' }],
    ['invite', { room: 'den', max_uses: 0 }],
    ['invite', { room: 'den', role: 'owner' }],
    ['knock', { room: 'den', note: 'x'.repeat(501) }],
    ['approve', { room: 'den', knock_id: 'not/valid' }],
    ['set_role', { room: 'den', nickname: 'x', role: 'admin' }],
    ['send_message', { room: 'den', body: 'x', to: '-bad' }],
  ]) {
    const r = await owner.call(name, args);
    assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}`);
    assert.match(r.content[0].text, /Invalid arguments/);
  }
});
