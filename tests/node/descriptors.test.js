// SPDX-License-Identifier: MIT
// Running out of file descriptors: the server warns at start, backs off accept instead of spinning, and recovers.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { eventually, session, sleep, startServer } = require('./harness');

// CPU seconds (user + system) the process has used so far.
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in clock ticks of 1/100 s
}

test('with too few descriptors accept backs off, logs are throttled, and service resumes', async (t) => {
  const server = await startServer(t, {
    descriptorLimit: 128,
    args: ['--handshake-timeout', '60', '--max-connections', '1000'],
  });
  await eventually(() => /only 128 file descriptors are allowed, too few for --max-connections 1000/.test(server.stderr),
    5000, 'the descriptor warning');

  // More silent connections than the server has descriptors for: the rest wait in the backlog.
  const sockets = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  await Promise.all(Array.from({ length: 200 }, () => new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    s.once('connect', resolve);
    sockets.push(s);
  })));
  await eventually(() => /accept failed/.test(server.stderr), 5000, 'accept to run out of descriptors');

  const before = cpuSeconds(server.proc.pid);
  await sleep(2000);
  const used = cpuSeconds(server.proc.pid) - before;
  assert.ok(used < 0.5, `the server used ${used} CPU-s in 2 s while out of descriptors`);
  const lines = (server.stderr.match(/accept failed/g) || []).length;
  assert.ok(lines <= 8, `${lines} 'accept failed' lines in about 2 s`);

  // Descriptors come back: the backlog drains and a new client gets a session.
  sockets.splice(0, 120).forEach((s) => s.destroy());
  const c = await session(server);
  await c.close();
});
