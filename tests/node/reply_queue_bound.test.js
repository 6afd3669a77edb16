// SPDX-License-Identifier: MIT
// A client that pipelines requests and never reads its socket is a slow consumer: replies count
// against --max-queue-bytes like deliveries, so the server closes it (4008) instead of growing.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const { session, sleep, startServer } = require('./harness');

function rssKiB(pid) {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

function maskedText(text) {
  const payload = Buffer.from(text);
  const key = crypto.randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]), key, payload]);
}

test('a client that never reads cannot make the server queue replies past --max-queue-bytes', async (t) => {
  const server = await startServer(t, { args: ['--max-queue-bytes', '65536'] });
  // 200 rooms make every list_rooms reply about 8 KB.
  const owner = await session(server);
  for (let i = 0; i < 200; i++) await owner.join(`room-number-${i}`);

  const sock = net.connect(server.port, '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.pause();  // never read: the kernel buffers fill, then the server's queue grows
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
             `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  sock.write(maskedText(JSON.stringify({ _tag: 'hello', clientVersion: '0.1.0' }).padEnd(130)));
  const before = rssKiB(server.proc.pid);
  const burst = Buffer.concat(Array(1000).fill(maskedText(JSON.stringify({ _tag: 'tool.list_rooms', requestId: 'x' }).padEnd(130))));
  let writeFailed = false;
  sock.on('error', () => { writeFailed = true; });
  for (let i = 0; i < 30 && !writeFailed && !sock.destroyed; i++) {
    sock.write(burst);  // 30,000 requests, about 240 MB of replies
    await sleep(50);
  }
  await sleep(1000);
  const grownMiB = (rssKiB(server.proc.pid) - before) / 1024;
  assert.ok(grownMiB < 32, `the server grew by ${grownMiB.toFixed(0)} MiB for one connection with --max-queue-bytes 65536`);
});
