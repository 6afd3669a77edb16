// SPDX-License-Identifier: MIT
// --cluster: two parley servers joined through a real nats-server (JetStream) serve one room as one: every
// member on either node gets every other member's message once, in the bus's order, and never its own.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { eventually, httpGet, runTool, session, sleep, startServer, stopServer, tempDir } = require('./harness');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

// A lone `nats-server -js` on a loopback port, killed when the test ends.
async function startNats(t, { port, dir } = {}) {
  port = port || (await freePort());
  dir = dir || tempDir(t);
  const proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', path.join(dir, 'js')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const nats = { proc, port, dir, url: `nats://127.0.0.1:${port}`, exited: false };
  proc.on('exit', () => (nats.exited = true));
  t.after(() => proc.kill('SIGKILL'));
  await eventually(async () => nats.exited ? Promise.reject(new Error(stderr)) : accepts(port), 10000, 'nats-server to accept');
  return nats;
}

test('nats-server is installed (scripts/install-deps.sh): the cluster tests need it', () => {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nats-server --version failed: ${r.error || r.stderr}`);
});

test('--cluster: members on two nodes get each other\'s messages once, in one order, never their own', async (t) => {
  const nats = await startNats(t);
  const args = ['--cluster', nats.url, '--rate-capacity', '1000', '--rate-per-second', '1000'];
  const one = await startServer(t, { args });
  const two = await startServer(t, { args });
  assert.match(one.stderr + two.stderr, /cluster node [0-9a-f]{12}/);

  const alice = await session(one);
  const bob = await session(two);
  const carol = await session(two);
  await alice.join('lobby', 'alice');
  await bob.join('lobby', 'bob');
  await carol.join('lobby', 'carol');

  const PER = 20;
  const senders = { alice, bob };
  const results = {};
  await Promise.all(
    Object.entries(senders).map(async ([name, c]) => {
      const sent = [];
      for (let k = 0; k < PER; k++) sent.push(c.sendMessage('lobby', `${name}-${k}`));
      results[name] = await Promise.all(sent);
    }),
  );
  const seqOf = new Map();
  for (const r of [...results.alice, ...results.bob]) {
    assert.ok(Number.isSafeInteger(r.seq) && r.seq > 0);
    assert.ok(!seqOf.has(r.messageId), 'each send its own message id');
    seqOf.set(r.messageId, r.seq);
  }
  assert.equal(new Set(seqOf.values()).size, 2 * PER, 'the bus gave each send its own seq');

  const receive = async (c, n) => {
    const got = [];
    for (let k = 0; k < n; k++) got.push(await c.message('lobby'));
    return got;
  };
  const toAlice = await receive(alice, PER);
  const toBob = await receive(bob, PER);
  const toCarol = await receive(carol, 2 * PER);
  assert.ok(toAlice.every((m) => m.fromNickname === 'bob'), 'alice hears bob, never herself');
  assert.ok(toBob.every((m) => m.fromNickname === 'alice'), 'bob hears alice, never himself');
  for (const got of [toAlice, toBob, toCarol]) {
    const seqs = got.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'each once');
    for (const m of got) assert.equal(m.seq, seqOf.get(m.messageId), 'the seq its sender was told');
  }
  // Carol (on node two) and alice (on node one) see bob's messages in the same order.
  const bobsSeen = (got) => got.filter((m) => m.fromNickname === 'bob').map((m) => m.messageId);
  assert.deepEqual(bobsSeen(toCarol), bobsSeen(toAlice));
  // Each sender's messages keep the order it sent them in.
  assert.deepEqual(
    toCarol.filter((m) => m.fromNickname === 'alice').map((m) => m.body),
    Array.from({ length: PER }, (_, k) => `alice-${k}`),
  );

  // A send retried under its clientMsgId is stored and delivered once.
  const first = await alice.sendMessage('lobby', 'once', { clientMsgId: 'retry-1' });
  const again = await alice.sendMessage('lobby', 'once', { clientMsgId: 'retry-1' });
  assert.deepEqual(again, first);
  const onceToBob = await bob.message('lobby');
  assert.equal(onceToBob.body, 'once');
  await sleep(300);
  assert.equal(bob.frames.filter((f) => f._tag === 'room.message').length, 0, 'no second copy');
  // Nodes stop before their NATS does (a node whose NATS is gone waits for it a while).
  assert.equal((await stopServer(one)).code, 0);
  assert.equal((await stopServer(two)).code, 0);
});

test('--cluster: /healthz answers 503 while NATS is away and 200 once it is back', async (t) => {
  const nats = await startNats(t);
  const server = await startServer(t, { args: ['--cluster', nats.url] });
  const healthy = await httpGet(server.port, '/healthz');
  assert.equal(healthy.status, 200);
  nats.proc.kill('SIGKILL');
  await eventually(async () => (await httpGet(server.port, '/healthz')).status === 503, 10000, '/healthz to answer 503');
  assert.match(server.stderr, /cluster: lost NATS/);
  await startNats(t, { port: nats.port, dir: nats.dir });
  await eventually(async () => (await httpGet(server.port, '/healthz')).status === 200, 15000, '/healthz to answer 200 again');
  assert.match(server.stderr, /cluster: NATS is back/);
  // This node had read nothing before NATS went, so it reads the new stream from its start
  // (docs/cluster.md: a node that had read records waits for the new numbering to pass them).
  const a = await session(server);
  const b = await session(server);
  await a.join('after', 'a');
  await b.join('after', 'b');
  const sent = await a.sendMessage('after', 'still here');
  const got = await b.message('after');
  assert.equal(got.body, 'still here');
  assert.equal(got.seq, sent.seq);
  assert.equal((await stopServer(server)).code, 0);
});

test('--cluster refuses a malformed NATS URL, and a node that cannot reach NATS does not start', async (t) => {
  const dir = tempDir(t);
  const bad = runTool(dir, ['server', '--port', '0', '--db', path.join(dir, 'p.db'), '--cluster', 'localhost:4222']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--cluster localhost:4222: a NATS server is named nats:\/\/HOST:PORT/);
  const port = await freePort();
  const r = runTool(dir, ['server', '--port', '0', '--db', path.join(dir, 'p.db'), '--cluster', `nats://127.0.0.1:${port}`], 20000);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cluster: cannot reach NATS/);
  assert.equal(r.stdout, '', 'it never said it was listening');
});

