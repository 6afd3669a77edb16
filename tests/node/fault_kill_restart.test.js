// SPDX-License-Identifier: MIT
// Fault matrix, kill -9 mid-traffic and a restart on the same database: the database opens, every room's
// seqs continue above anything handed out before the kill, and nobody loses messages silently: a ws
// client's resume is refused with UnknownSessionError (so it knows to rejoin), and an MCP bridge
// rejoins by itself and pushes its "messages may have been missed" notice per room.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { BINARY, cleanEnv, connect, session, sleep, startServer, tempDir, eventually } = require('./harness');

async function bridge(t, dir, url) {
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp', '--log-level', 'debug'],
    env: cleanEnv(dir, { PARLEY_SERVER: url }),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'parley-fault', version: '1.0.0' }, { capabilities: {} });
  const pushes = [];
  client.fallbackNotificationHandler = async (n) => {
    if (n.method === 'notifications/claude/channel') pushes.push(n.params);
  };
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  return { client, pushes, call: (name, args = {}) => client.callTool({ name, arguments: args }) };
}

const until = (what, fn, timeoutMs = 20000) => eventually(fn, timeoutMs, what);

test('kill -9 while three rooms carry traffic; restart on the same db: seqs go on above, clients and a bridge learn of the gap', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const rooms = ['alpha', 'beta', 'gamma'];
  const first = await startServer(t, { dir, db, args: ['--rate-capacity', '1000', '--rate-per-second', '1000'] });

  const sender = await session(first);
  const reader = await session(first);
  for (const r of rooms) {
    await sender.join(r, 'sender');
    await reader.join(r, 'reader');
  }
  const agent = await bridge(t, dir, first.url);
  for (const r of rooms) {
    const j = await agent.call('join_room', { room: r, nickname: 'agent' });
    assert.ok(!j.isError, JSON.stringify(j.content));
  }

  // Traffic: the sender keeps many sends in flight in every room; the kill lands in the middle.
  const highest = Object.fromEntries(rooms.map((r) => [r, 0]));  // highest seq seen by anyone, ok or delivery
  reader.ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    if (f._tag === 'room.message') highest[f.room] = Math.max(highest[f.room], f.seq);
  });
  let okCount = 0;
  sender.ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    if (f._tag === 'tool.ok' && f.result.seq) {
      okCount++;
      highest[f.result.room] = Math.max(highest[f.result.room], f.result.seq);
    }
  });
  let i = 0;
  const pump = setInterval(() => {
    for (let k = 0; k < 20; k++) {
      const room = rooms[i % rooms.length];
      sender.send({ _tag: 'tool.send_message', requestId: `p${i}`, room, body: `m${i}`, clientMsgId: `c${i}` });
      i++;
    }
  }, 5);
  await until('traffic in every room', async () => okCount > 400 && rooms.every((r) => highest[r] > 0), 20000);
  first.proc.kill('SIGKILL');
  const exit = await first.exit;
  clearInterval(pump);
  assert.equal(exit.signal, 'SIGKILL');
  await Promise.all([sender.waitClose(10000), reader.waitClose(10000)]);
  const before = { ...highest };
  console.log(`FIGURE kill9_sends_acknowledged_before_kill: ${okCount} (sent ${i})`);
  console.log(`FIGURE kill9_highest_seq_before_kill: ${JSON.stringify(before)}`);

  // The same port, so the bridge's URL still points at it.
  const t0 = Date.now();
  const second = await startServer(t, { dir, db, port: first.port });
  assert.equal(second.port, first.port);
  console.log(`FIGURE kill9_restart_to_listening_ms: ${Date.now() - t0}`);

  // A ws client's resume is refused: the gap is announced, not papered over.
  const r1 = await connect(second);
  const h = await r1.hello({
    resume: { sessionId: reader.session.sessionId, reconnectToken: reader.session.reconnectToken, lastAckedSeqByRoom: before },
  });
  assert.equal(h._tag, 'hello.err');
  assert.equal(h.code, 'UnknownSessionError');
  assert.equal((await r1.waitClose()).code, 4001);

  // Rooms survived; a fresh session rejoins and seqs continue above everything seen before the kill.
  const s2 = await session(second);
  const r2 = await session(second);
  const list = await s2.ok('tool.list_rooms');
  assert.deepEqual(list.available.map((r) => r.name), [...rooms].sort());
  for (const r of rooms) {
    await s2.join(r, 'sender');
    await r2.join(r, 'reader');
  }
  const tReconnect = Date.now();
  const rejoined = await until('the bridge to rejoin every room', async () => {
    const w = await agent.call('list_rooms');
    return !w.isError && w.structuredContent.joined.length === rooms.length ? w : null;
  });
  assert.deepEqual(rejoined.structuredContent.joined.map((r) => r.nickname), ['agent', 'agent', 'agent']);
  console.log(`FIGURE kill9_bridge_rejoined_after_restart_ms: ${Date.now() - t0} (polled ${Date.now() - tReconnect} ms)`);
  const notices = await until('one reconnected notice per room', async () => {
    const n = agent.pushes.filter((p) => p.meta && p.meta.event === 'reconnected');
    return n.length >= rooms.length ? n : null;
  });
  assert.deepEqual(notices.map((n) => n.meta.room).sort(), [...rooms].sort());
  for (const n of notices) assert.match(n.content, /may have been missed/);

  for (const r of rooms) {
    const sent = await s2.sendMessage(r, `after restart in ${r}`);
    assert.ok(sent.seq > before[r], `${r}: seq ${sent.seq} after the restart must be above ${before[r]}`);
    const m = await r2.message(r);
    assert.equal(m.seq, sent.seq);
    console.log(`FIGURE kill9_seq_jump_${r}: ${before[r]} -> ${sent.seq}`);
  }
  // The bridge gets them too.
  await until('the bridge to push the three messages', async () =>
    rooms.every((r) => agent.pushes.some((p) => p.content === `after restart in ${r}`)));
  for (const c of [s2, r2]) await c.close();
});
