// SPDX-License-Identifier: MIT
// parley-tools mcp driven by the official MCP TypeScript SDK client, two bridges in one room, against the real server.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { BINARY, cleanEnv, sleep, startServer, tempDir, eventually } = require('./harness');

// One agent: an SDK client speaking to its own `parley-tools mcp` over stdio.
async function agent(t, server, { env = {} } = {}) {
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp', '--log-level', 'debug'],
    env: cleanEnv(server.dir, { PARLEY_SERVER: server.url, ...env }),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'parley-test', version: '1.0.0' }, { capabilities: {} });
  const pushes = [];
  const waiters = [];
  client.fallbackNotificationHandler = async (n) => {
    if (n.method !== 'notifications/claude/channel') return;
    pushes.push(n.params);
    for (const w of waiters.splice(0)) w();
  };
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  const a = {
    client,
    transport,
    pushes,
    async call(name, args = {}) {
      return client.callTool({ name, arguments: args });
    },
    async ok(name, args = {}) {
      const r = await a.call(name, args);
      assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
      assert.deepEqual(JSON.parse(r.content[0].text), r.structuredContent, 'text and structuredContent carry the same JSON');
      return r.structuredContent;
    },
    // Resolves once `count` channel notifications have arrived.
    async pushed(count, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      while (pushes.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} channel pushes, got ${JSON.stringify(pushes)}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return pushes;
    },
  };
  return a;
}

// Waits until the bridge answers tools again (it reconnects in the background).
const until = (what, fn, timeoutMs = 15000) => eventually(fn, timeoutMs, what);

test('initialize: protocol version, capabilities with claude/channel, instructions', async (t) => {
  const server = await startServer(t);
  const a = await agent(t, server);
  const caps = a.client.getServerCapabilities();
  assert.ok(caps.tools);
  assert.deepEqual(caps.experimental, { 'claude/channel': {} });
  const instructions = a.client.getInstructions();
  assert.match(instructions, /never instructions/);
  assert.match(instructions, /small talk/);
  assert.equal(a.client.getServerVersion().name, 'parley');
});

test('tools/list: every tool with an input schema carrying the real limits, and an output schema', async (t) => {
  const server = await startServer(t);
  const a = await agent(t, server);
  const { tools } = await a.client.listTools();
  const byName = Object.fromEntries(tools.map((x) => [x.name, x]));
  assert.deepEqual(Object.keys(byName).sort(),
                   ['join_room', 'leave_room', 'list_rooms', 'read_messages', 'send_message', 'who_is_here']);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, 'object', tool.name);
    assert.equal(tool.outputSchema.type, 'object', tool.name);
  }
  assert.equal(byName.join_room.inputSchema.properties.room.pattern, '^[a-z0-9][a-z0-9-]{0,31}$');
  assert.equal(byName.join_room.inputSchema.properties.nickname.pattern, '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$');
  assert.equal(byName.send_message.inputSchema.properties.body.minLength, 1);
  assert.equal(byName.read_messages.inputSchema.properties.wait_ms.maximum, 60000);
});

test('two bridges: join, send, the channel push with content and meta, no self-echo', async (t) => {
  const server = await startServer(t);
  const alice = await agent(t, server);
  const bob = await agent(t, server);
  assert.equal((await alice.ok('join_room', { room: 'lobby', nickname: 'alice' })).nickname, 'alice');
  const joined = await bob.ok('join_room', { room: 'lobby' });
  assert.match(joined.nickname, /^[a-z]+-[a-z]+$/);
  assert.equal(joined.membersCount, 2);
  const sent = await alice.ok('send_message', { room: 'lobby', body: 'hello from alice' });
  assert.equal(typeof sent.seq, 'number');
  const [push] = await bob.pushed(1);
  assert.equal(push.content, 'hello from alice');
  assert.deepEqual(push.meta, {
    room: 'lobby', from_nickname: 'alice', from_kind: 'agent', seq: String(sent.seq), message_id: sent.messageId, sent_at: sent.sentAt,
  });
  for (const key of Object.keys(push.meta)) assert.match(key, /^[A-Za-z0-9_]+$/);
  await sleep(300);
  assert.equal(alice.pushes.length, 0, 'the sender never receives its own message');
  assert.deepEqual((await bob.ok('who_is_here', { room: 'lobby' })).nicknames, ['alice', joined.nickname]);
  const listed = await alice.ok('list_rooms');
  assert.deepEqual(listed.joined, [{ name: 'lobby', nickname: 'alice', membersCount: 2, role: 'owner' }]);
  assert.deepEqual(await alice.ok('leave_room', { room: 'lobby' }), { room: 'lobby' });
});

test('each isError path: nickname taken, not in room, rate limited, invalid argument', async (t) => {
  const server = await startServer(t);
  const alice = await agent(t, server);
  const bob = await agent(t, server);
  await alice.ok('join_room', { room: 'lobby', nickname: 'alice' });
  const taken = await bob.call('join_room', { room: 'lobby', nickname: 'ALICE' });
  assert.equal(taken.isError, true);
  assert.match(taken.content[0].text, /taken/);
  const notIn = await bob.call('send_message', { room: 'lobby', body: 'x' });
  assert.equal(notIn.isError, true);
  assert.match(notIn.content[0].text, /join/);
  const invalid = await bob.call('join_room', { room: 'Not A Slug' });
  assert.equal(invalid.isError, true);
  assert.match(invalid.content[0].text, /room/i);
  const tooBig = await alice.call('send_message', { room: 'lobby', body: '\u{1F600}'.repeat(2049) });
  assert.equal(tooBig.isError, true, 'bodies are counted in UTF-8 bytes');
  let limited = null;
  for (let i = 0; i < 25 && !limited; i++) {
    const r = await alice.call('send_message', { room: 'lobby', body: `m${i}` });
    if (r.isError) limited = r;
  }
  assert.ok(limited, 'the 21st rapid send is refused');
  assert.match(limited.content[0].text, /wait \d+ ms/);
  assert.match(limited.content[1].text, /"retryAfterMs":\d+/);
});

test('unknown tools and malformed calls are JSON-RPC errors', async (t) => {
  const server = await startServer(t);
  const a = await agent(t, server);
  await assert.rejects(a.client.callTool({ name: 'no_such_tool', arguments: {} }), /-32602|Unknown tool|no_such_tool/);
});

test('read_messages: without waiting, and waiting for the first message', async (t) => {
  const server = await startServer(t);
  const alice = await agent(t, server);
  const bob = await agent(t, server);
  await alice.ok('join_room', { room: 'lobby', nickname: 'alice' });
  await bob.ok('join_room', { room: 'lobby', nickname: 'bob' });
  assert.deepEqual(await bob.ok('read_messages'), { messages: [], dropped: false });
  await alice.ok('send_message', { room: 'lobby', body: 'one' });
  await bob.pushed(1);
  const read = await bob.ok('read_messages', { room: 'lobby' });
  assert.equal(read.messages.length, 1);
  assert.equal(read.messages[0].body, 'one');
  assert.equal(read.messages[0].fromNickname, 'alice');
  const waiting = bob.ok('read_messages', { wait_ms: 10000 });
  await sleep(300);
  const started = Date.now();
  await alice.ok('send_message', { room: 'lobby', body: 'two' });
  const woke = await waiting;
  assert.equal(woke.messages[0].body, 'two');
  assert.ok(Date.now() - started < 5000, 'the wait ended when the message came, not at its deadline');
});

test('stdin EOF: the bridge exits and the other side no longer sees it', async (t) => {
  const server = await startServer(t);
  const bob = await agent(t, server);
  await bob.ok('join_room', { room: 'lobby', nickname: 'bob' });
  const dir = tempDir(t);
  const proc = spawn(BINARY, ['mcp'], { env: cleanEnv(dir, { PARLEY_SERVER: server.url }), stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  const send = (m) => proc.stdin.write(JSON.stringify(m) + '\n');
  send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  await until('the raw bridge to join', async () => {
    send({ jsonrpc: '2.0', id: 2 + Math.floor(Math.random() * 1e9), method: 'tools/call', params: { name: 'join_room', arguments: { room: 'lobby', nickname: 'carol' } } });
    await sleep(200);
    return (await bob.ok('who_is_here', { room: 'lobby' })).nicknames.includes('carol');
  });
  const closedAt = Date.now();
  proc.stdin.end();
  const code = await exited;
  assert.equal(code, 0);
  assert.ok(Date.now() - closedAt < 1500, 'exits within about a second of stdin EOF');
  for (const line of out.split('\n').filter(Boolean)) assert.equal(JSON.parse(line).jsonrpc, '2.0', 'stdout carries only MCP');
  assert.deepEqual((await bob.ok('who_is_here', { room: 'lobby' })).nicknames, ['bob'],
                   'the session ended at once, not after the grace period');
});

test('server killed and restarted: the bridge reconnects, rejoins, says messages may be lost, and the next message arrives', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const first = await startServer(t, { dir, db });
  const alice = await agent(t, first);
  const bob = await agent(t, first);
  await alice.ok('join_room', { room: 'lobby', nickname: 'alice' });
  await bob.ok('join_room', { room: 'lobby', nickname: 'bob' });
  first.proc.kill('SIGKILL');
  await first.exit;
  // The same port, so the bridges' URL still points at it.
  const second = spawn(BINARY, ['server', '--port', String(first.port), '--db', db], { env: cleanEnv(dir), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => second.kill('SIGKILL'));
  await new Promise((resolve) => second.stdout.once('data', resolve));
  const who = await until('both bridges to rejoin', async () => {
    const r = await bob.call('who_is_here', { room: 'lobby' });
    return !r.isError && r.structuredContent.nicknames.length === 2 ? r.structuredContent : null;
  });
  assert.deepEqual(who.nicknames.sort(), ['alice', 'bob']);
  const notices = await bob.pushed(1);
  assert.equal(notices[0].meta.event, 'reconnected');
  assert.match(notices[0].content, /may have been missed/);
  await alice.ok('send_message', { room: 'lobby', body: 'after the restart' });
  const pushes = await bob.pushed(2);
  assert.equal(pushes[1].content, 'after the restart');
});

test('starting while the server is down: tools say it is unreachable until it is up', async (t) => {
  const dir = tempDir(t);
  const probe = spawnSync(process.execPath, ['-e', 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'], { encoding: 'utf8' });
  const port = Number(probe.stdout.trim());
  const server = { dir, url: `ws://127.0.0.1:${port}/` };
  const a = await agent(t, server);
  const r = await a.call('list_rooms');
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /unreachable/);
  const proc = spawn(BINARY, ['server', '--port', String(port), '--db', path.join(dir, 'parley.db')], { env: cleanEnv(dir), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => proc.kill('SIGKILL'));
  await until('the bridge to connect', async () => !(await a.call('list_rooms')).isError);
});

test('the Inspector CLI lists the tools', async (t) => {
  const server = await startServer(t);
  const inspector = require.resolve('@modelcontextprotocol/inspector/cli/build/cli.js');
  const r = spawnSync(process.execPath, [inspector, '--cli', '-e', `PARLEY_SERVER=${server.url}`, BINARY, 'mcp', '--method', 'tools/list'],
                      { encoding: 'utf8', timeout: 60000, env: cleanEnv(server.dir) });
  assert.equal(r.status, 0, r.stderr);
  const names = JSON.parse(r.stdout).tools.map((x) => x.name);
  assert.ok(names.includes('send_message') && names.includes('read_messages'), r.stdout);
});
