// SPDX-License-Identifier: MIT
// Fault matrix, a disk that fails while the server runs. The database directory, file and WAL are made
// immutable with `chattr +i` (chmod does not stop root, which CI may be; a tmpfs cannot be mounted in a
// container): every write then fails with EPERM, as on a disk gone read-only. The test is skipped where
// chattr +i is not allowed (it needs CAP_LINUX_IMMUTABLE and a filesystem with the flag).
//
// What the server must do: keep serving existing rooms from the seq block it already reserved; refuse what
// needs a write (creating a room, a new seq block) with a clear InternalError; say so in its log; lose
// nothing it acknowledged: after the disk comes back and even after a kill -9, seqs go on above every
// seq it handed out.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { httpGet, session, startServer } = require('./harness');

function chattr(flag, files) {
  return spawnSync('chattr', [flag, ...files], { encoding: 'utf8', timeout: 10000 });
}

function chattrWorks() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chattr-'));
  const f = path.join(dir, 'probe');
  fs.writeFileSync(f, 'x');
  const ok = chattr('+i', [f]).status === 0;
  let blocked = false;
  if (ok) {
    try {
      fs.appendFileSync(f, 'y');
    } catch {
      blocked = true;
    }
    chattr('-i', [f]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return ok && blocked;
}

const CHATTR = chattrWorks();
let healthDuringFailure = null;  // what /healthz said while the database could not be written
const SEQ_BLOCK = 256;  // hub_config::seq_block_size

test('the database becomes unwritable while the server runs', { skip: !CHATTR && 'chattr +i is not permitted here' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-disk-'));
  const db = path.join(dir, 'parley.db');
  const frozen = [dir, db, `${db}-wal`];
  t.after(() => {
    chattr('-i', frozen);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const server = await startServer(t, { dir, db, args: ['--rate-capacity', '1000', '--rate-per-second', '1000'] });
  const a = await session(server);
  const b = await session(server);
  await a.join('lobby', 'alice');
  await b.join('lobby', 'bob');
  const first = await a.sendMessage('lobby', 'before the failure');
  assert.equal(first.seq, 1);
  assert.equal((await b.message('lobby')).seq, 1);

  const r = chattr('+i', frozen);
  assert.equal(r.status, 0, r.stderr);
  const failedAt = server.stderr.length;

  // Existing room: served from the reserved block, every message delivered.
  // (The block after it may have been reserved ahead before the disk froze: up to two blocks.)
  let last = first.seq;
  let sent = 0;
  let past;
  for (; ; sent++) {
    const r = await a.call('tool.send_message', { room: 'lobby', body: `during ${sent}` });
    if (r._tag !== 'tool.ok') { past = r; break; }
    assert.equal(r.result.seq, last + 1);
    last = r.result.seq;
    assert.equal((await b.message('lobby')).seq, last);
    assert.ok(last <= 2 * SEQ_BLOCK, `seq ${last} was not reserved before the failure`);
  }
  assert.ok(last >= SEQ_BLOCK, `only ${last} seqs served`);
  console.log(`FIGURE disk_failed_messages_served_from_reserved_block: ${sent} (seqs ${first.seq + 1}..${last})`);

  // Past the reserved blocks a new one cannot be reserved: a clear error, not a repeated seq.
  assert.equal(past._tag, 'tool.err', JSON.stringify(past));
  assert.equal(past.code, 'InternalError');
  console.log(`FIGURE disk_failed_send_past_block: ${past.code}: ${past.message}`);
  // Creating a room needs a write: refused.
  const join = await a.call('tool.join_room', { room: 'newroom' });
  assert.equal(join._tag, 'tool.err', JSON.stringify(join));
  assert.equal(join.code, 'InternalError');
  console.log(`FIGURE disk_failed_create_room: ${join.code}: ${join.message}`);
  // Joining an existing room needs no write and still works; reads work.
  const c = await session(server);
  assert.equal((await c.join('lobby', 'carol')).membersCount, 3);
  assert.deepEqual((await c.ok('tool.list_rooms')).joined.map((x) => x.name), ['lobby']);
  assert.ok(!b.frames.some((f) => f._tag === 'room.message'), 'nothing was delivered for the refused send');

  // The failure is in the log.
  const log = server.stderr.slice(failedAt);
  const logged = /(ERROR|WARN).*(database|sqlite|seq|room)/i.test(log);
  console.log(`FIGURE disk_failed_logged: ${logged ? log.split('\n').find((l) => /(ERROR|WARN)/.test(l)) : 'nothing at warn or error'}`);
  // /healthz: should not say 200 ok while the database cannot be written.
  const health = await httpGet(server.port, '/healthz');
  console.log(`FIGURE disk_failed_healthz: ${health.status} ${JSON.stringify(health.body)}`);
  healthDuringFailure = health;

  // The disk comes back: the server recovers without a restart.
  assert.equal(chattr('-i', frozen).status, 0);
  const again = await a.sendMessage('lobby', 'after the disk came back');
  assert.ok(again.seq > last, `${again.seq} after ${last}`);
  assert.equal((await b.message('lobby')).seq, again.seq);
  assert.equal((await a.join('newroom')).room, 'newroom');
  assert.match(server.stderr, /INFO database writable again/);
  // A room's creation is written in the background; its first message waits for it.
  await a.sendMessage('newroom', 'made to last');

  // Nothing acknowledged is lost: after a kill -9, seqs go on above all of them.
  server.proc.kill('SIGKILL');
  await server.exit;
  const second = await startServer(t, { dir, db });
  const d = await session(second);
  assert.deepEqual((await d.ok('tool.list_rooms')).available.map((x) => x.name), ['lobby', 'newroom']);
  await d.join('lobby', 'dave');
  const after = await d.sendMessage('lobby', 'after the restart');
  assert.ok(after.seq > again.seq, `${after.seq} after ${again.seq}`);
  await d.close();

  // Asserted last so the figures above are printed either way.
  assert.ok(logged, `the failure must be logged at warn or error:\n${log}`);
});

// The host reports its storage failing through server_hooks::storage_failing(); the core
// then answers /healthz with 503.
test('/healthz is not 200 while the database cannot be written', {
  skip: !CHATTR && 'chattr +i is not permitted here',
}, () => {
  assert.ok(healthDuringFailure, 'the test above measured /healthz during the failure');
  assert.equal(healthDuringFailure.status, 503);
});
