#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// End-to-end fan-out against the real server: M members in one room, one of them sending as fast as the server accepts; reports deliveries/s received.
//
// Usage: node bench/fanout_e2e.js [--binary PATH] [--members 100] [--messages 5000] [--body 200]
//                                 [--window 64] [--workers 1] [--timeout 120]
// The rate limit is raised for the run (--rate-capacity/--rate-per-second), so the
// sender is bounded only by its window of unanswered sends. Receivers run in worker
// threads (one by default: on a 2-core machine more only compete with the server); the
// clients usually cost more CPU than the server, so its own CPU time is reported too.
'use strict';

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { cpuSeconds, findBinary, loadWs, parseArgs, startServer } = require('./bench_support');

const WebSocket = loadWs();
const ROOM = 'bench';
const TAG = '{"_tag":"room.message",';

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// Sends a frame and resolves with the first answer `match` accepts.
function exchange(ws, frame, match) {
  return new Promise((resolve, reject) => {
    const onMessage = (data) => {
      const f = JSON.parse(data.toString());
      if (match(f)) {
        ws.off('message', onMessage);
        resolve(f);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', (code) => reject(new Error(`closed with ${code}`)));
    ws.send(JSON.stringify(frame));
  });
}

async function member(url, nickname) {
  const ws = await open(url);
  const hello = await exchange(ws, { _tag: 'hello', clientVersion: '0.1.0' }, (f) => f._tag.startsWith('hello.'));
  if (hello._tag !== 'hello.ok') throw new Error(JSON.stringify(hello));
  const joined = await exchange(ws, { _tag: 'tool.join_room', requestId: 'j', room: ROOM, nickname }, (f) => f.requestId === 'j');
  if (joined._tag !== 'tool.ok') throw new Error(JSON.stringify(joined));
  return ws;
}

// ---- a worker: holds some receivers and says when each has every message --------

async function workerMain() {
  const { url, first, count, messages } = workerData;
  const sockets = [];
  let finished = 0;
  for (let i = 0; i < count; i++) {
    const ws = await member(url, `r${first + i}`);
    let got = 0;
    ws.on('message', (data) => {
      // A cheap check instead of JSON.parse: the server's room.message frames start with this tag.
      if (data.length > TAG.length && data.toString('latin1', 0, TAG.length) === TAG) {
        if (++got === messages && ++finished === count) parentPort.postMessage({ done: true });
      }
    });
    ws.on('close', (code) => parentPort.postMessage({ closed: code, member: first + i, got }));
    sockets.push(ws);
  }
  parentPort.postMessage({ ready: true });
  parentPort.on('message', (m) => {
    if (m.stop) for (const ws of sockets) ws.terminate();
  });
}

// ---- the main thread: the server, the sender, the clock ----------------------

async function main() {
  const o = parseArgs({ binary: '', members: 100, messages: 5000, body: 200, window: 64, workers: 1, timeout: 120 });
  const receivers = o.members - 1;
  if (receivers < 1 || o.messages < 1 || o.body < 1 || o.body > 8192 || o.workers < 1) throw new Error('bad arguments');
  const server = await startServer(findBinary(o.binary), [
    '--rate-capacity', String(o.messages + 1), '--rate-per-second', '1000000',
    '--max-queue-bytes', String(64 * 1024 * 1024),
  ]);
  const deadline = setTimeout(() => {
    console.error(`fanout_e2e: gave up after ${o.timeout} s`);
    server.proc.kill('SIGKILL');
    process.exit(1);
  }, o.timeout * 1000);

  const workers = [];
  let pendingDone = 0;
  let allDone;
  const done = new Promise((resolve) => (allDone = resolve));
  const readies = [];
  const per = Math.ceil(receivers / o.workers);
  for (let first = 0; first < receivers; first += per) {
    const count = Math.min(per, receivers - first);
    const w = new Worker(__filename, { workerData: { url: server.url, first, count, messages: o.messages } });
    pendingDone++;
    readies.push(
      new Promise((resolve, reject) => {
        w.on('message', (m) => {
          if (m.ready) resolve();
          if (m.done && --pendingDone === 0) allDone(process.hrtime.bigint());
          if (m.closed !== undefined && m.got < o.messages) {
            console.error(`fanout_e2e: receiver ${m.member} closed with ${m.closed} after ${m.got} messages`);
            process.exitCode = 1;
          }
        });
        w.on('error', reject);
      }),
    );
    workers.push(w);
  }
  await Promise.all(readies);

  const sender = await member(server.url, 'sender');
  const body = 'x'.repeat(o.body);
  let sent = 0;
  let answered = 0;
  let refused = 0;
  let senderDone;
  const senderFinished = new Promise((resolve) => (senderDone = resolve));
  const sendOne = () => {
    sent++;
    sender.send(`{"_tag":"tool.send_message","requestId":"s${sent}","room":"${ROOM}","body":"${body}"}`);
  };
  sender.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f._tag === 'tool.err') refused++;
    if (f._tag !== 'tool.ok' && f._tag !== 'tool.err') return;
    if (++answered === o.messages) senderDone(process.hrtime.bigint());
    else if (sent < o.messages) sendOne();
  });

  const cpuBefore = cpuSeconds(server.proc.pid);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < Math.min(o.window, o.messages); i++) sendOne();
  const tSent = await senderFinished;
  const tDone = await done;
  const cpu = cpuSeconds(server.proc.pid) - cpuBefore;
  clearTimeout(deadline);

  const seconds = Number(tDone - t0) / 1e9;
  const deliveries = o.messages * receivers;
  console.log(
    `fanout_e2e: ${o.members} members (1 sender, ${receivers} receivers in ${workers.length} worker threads), ` +
      `${o.messages} messages of ${o.body} bytes, window ${o.window}`,
  );
  console.log(`  sends accepted: ${o.messages - refused}/${o.messages} in ${(Number(tSent - t0) / 1e9).toFixed(3)} s`);
  console.log(`  all delivered:  ${deliveries} deliveries in ${seconds.toFixed(3)} s = ${Math.round(deliveries / seconds)} deliveries/s`);
  console.log(`  server CPU:     ${cpu.toFixed(2)} s = ${Math.round(deliveries / cpu)} deliveries per server CPU-second`);
  if (refused) process.exitCode = 1;

  for (const w of workers) w.postMessage({ stop: true });
  sender.terminate();
  await server.stop();
  for (const w of workers) await w.terminate();
}

if (isMainThread) {
  main().catch((e) => {
    console.error(`fanout_e2e: ${e.stack || e}`);
    process.exit(1);
  });
} else {
  workerMain().catch((e) => {
    console.error(`fanout_e2e worker: ${e.stack || e}`);
    process.exit(1);
  });
}
