// SPDX-License-Identifier: MIT
// A host that writes requests and never reads stdout must not grow `parley-tools mcp`: the bridge
// stops reading stdin while its stdout is backed up, and answers everything once it is read.
// Registered in ctest as node_mcp_backpressure, like every tests/node/*.test.js.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { BINARY, cleanEnv, sleep, startServer, withTimeout } = require('./harness');

function rssKiB(pid) {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

const line = (message) => `${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`;

test('a host that does not read stdout holds the bridge under 64 MiB, and then gets every answer', async (t) => {
  const server = await startServer(t);
  // Under AddressSanitizer freed memory sits in a quarantine of up to 256 MiB, which would count
  // answers long written; a small one leaves RSS to what is live.
  const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=1'].filter(Boolean).join(':');
  const bridge = spawn(BINARY, ['mcp'], {
    env: cleanEnv(server.dir, { PARLEY_SERVER: server.url, ASAN_OPTIONS: asan }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => bridge.on('exit', resolve));
  t.after(() => bridge.kill('SIGKILL'));
  bridge.stderr.resume();
  bridge.stdin.on('error', () => {});

  bridge.stdin.write(
    line({ id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) +
      line({ method: 'notifications/initialized' }),
  );
  await sleep(500);  // connected and initialized: what it costs before any backlog
  const baseline = rssKiB(bridge.pid);
  // stdout is not read: no 'data' listener, so node stops taking it from the pipe once its own
  // small buffer is full. Write for 3 s as fast as the bridge takes stdin.
  let sent = 0;
  let maxRss = 0;
  let drained = true;
  bridge.stdin.on('drain', () => {
    drained = true;
  });
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    if (drained) {
      let chunk = '';
      for (let i = 0; i < 500; i++) {
        sent++;
        chunk += line({ id: sent, method: sent % 2 ? 'tools/list' : 'ping' });
      }
      drained = bridge.stdin.write(chunk);
    }
    maxRss = Math.max(maxRss, rssKiB(bridge.pid));
    await sleep(drained ? 0 : 20);
  }
  await sleep(500);
  maxRss = Math.max(maxRss, rssKiB(bridge.pid));
  t.diagnostic(`${sent} requests written before the bridge stopped reading; RSS ${baseline} KiB, then at most ${maxRss} KiB`);
  // Growth, not the total, so that a sanitizer's own overhead does not count.
  assert.ok(maxRss - baseline < 64 * 1024, `the bridge's RSS grew from ${baseline} to ${maxRss} KiB while stdout was not read`);
  // It stopped taking stdin: 1 MiB of unwritten answers and the pipes' buffers hold a few
  // thousand requests (a bridge that kept reading took a million in those 3 s).
  assert.ok(sent < 50000, `the bridge kept reading stdin: ${sent} requests taken while stdout was not read`);

  // Now the host reads: every request is answered, once.
  const answered = new Map();
  let buffered = '';
  bridge.stdout.setEncoding('utf8');
  bridge.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const message = JSON.parse(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      if ('id' in message) answered.set(message.id, (answered.get(message.id) || 0) + 1);
    }
  });
  await withTimeout(
    (async () => {
      while (answered.size < sent + 1) await sleep(50);
    })(),
    60000,
    `answers to all ${sent + 1} requests (got ${answered.size})`,
  );
  for (const [id, n] of answered) assert.equal(n, 1, `request ${id} answered ${n} times`);
  assert.ok(sent > 0);
  bridge.stdin.end();
  await withTimeout(exited, 5000, 'the bridge to exit on stdin EOF');
});
