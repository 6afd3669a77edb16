// SPDX-License-Identifier: MIT
// Too few file descriptors: the server warns at start, stops accepting at its budget instead of running
// out (or spinning on EMFILE), and resumes when connections close.
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

// Descriptors the process has open now.
function openDescriptors(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

test('with too few descriptors accept waits at the budget, logs are throttled, and service resumes', async (t) => {
  const server = await startServer(t, {
    descriptorLimit: 128,
    args: ['--handshake-timeout', '60', '--max-connections', '1000'],
  });
  await eventually(() => /only 128 file descriptors are allowed, too few for --max-connections 1000: past 64 connections/.test(server.stderr),
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
  await eventually(() => /64 connections use the file descriptors allowed/.test(server.stderr), 5000,
    'accept to stop at the budget');

  const before = cpuSeconds(server.proc.pid);
  await sleep(2000);
  const used = cpuSeconds(server.proc.pid) - before;
  assert.ok(used < 0.5, `the server used ${used} CPU-s in 2 s while at its budget`);
  // The budget leaves the database, TLS and the sanitizers descriptors of their own:
  // accept never reaches EMFILE.
  assert.doesNotMatch(server.stderr, /accept failed/);
  const open = openDescriptors(server.proc.pid);
  assert.ok(open <= 128 - 32, `${open} descriptors open at the budget`);
  const lines = (server.stderr.match(/use the file descriptors allowed/g) || []).length;
  assert.ok(lines <= 3, `${lines} budget lines in about 2 s`);

  // Descriptors come back: the backlog drains and a new client gets a session.
  sockets.splice(0, 160).forEach((s) => s.destroy());
  const c = await session(server);
  await c.close();
});
