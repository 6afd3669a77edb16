// SPDX-License-Identifier: MIT
// A client that pipelines requests and never reads its socket is a slow consumer: replies count
// against --max-queue-bytes like deliveries, so the server closes it (4008) instead of growing.
// Registered in ctest as node_reply_queue_bound, like every tests/node/*.test.js.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const { eventually, metrics, session, sleep, startServer, withTimeout } = require('./harness');

function rssKiB(pid) {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

function maskedText(text) {
  const payload = Buffer.from(text);
  const key = crypto.randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]), key, payload]);
}

// Waits until `text` has arrived on a raw socket without taking it: read() and unshift() leave
// the bytes in the socket's buffer, so the client has still read nothing.
function arrived(sock, text) {
  return eventually(() => {
    const buffered = sock.read();
    if (buffered === null) return false;
    sock.unshift(buffered);
    return buffered.includes(text);
  }, 5000, JSON.stringify(text));
}

// Everything the server sent on a raw socket, read once the server has ended the connection.
function readToEnd(sock) {
  const chunks = [];
  sock.on('data', (d) => chunks.push(d));
  const ended = new Promise((resolve) => {
    sock.once('end', resolve);
    sock.once('close', resolve);
  });
  sock.resume();
  return withTimeout(ended, 10000, 'the server to end the connection').then(() => Buffer.concat(chunks));
}

// The close frame in a server's bytes: skips the HTTP head, then walks the (unmasked) frames.
function closeFrameIn(bytes) {
  const head = bytes.indexOf('\r\n\r\n');
  assert.ok(head > 0, `no HTTP head in ${JSON.stringify(bytes.subarray(0, 200).toString())}`);
  assert.match(bytes.subarray(0, head).toString(), /^HTTP\/1\.1 101 /);
  let at = head + 4;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at] & 0x0f;
    let length = bytes[at + 1] & 0x7f;
    let payload = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      payload = at + 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      payload = at + 10;
    }
    if (opcode === 8) {
      const body = bytes.subarray(payload, payload + length);
      return { code: body.readUInt16BE(0), reason: body.subarray(2).toString() };
    }
    at = payload + length;
  }
  return null;
}

test('a client that never reads cannot make the server queue replies past --max-queue-bytes', async (t) => {
  // One session creates all the rooms: its room budget must allow 200.
  const server = await startServer(t, { args: ['--max-queue-bytes', '65536', '--room-rate-capacity', '200'] });
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
  // The burst is for an open session: it follows hello.ok rather than being pipelined behind the hello.
  await arrived(sock, '"_tag":"hello.ok"');
  const before = rssKiB(server.proc.pid);
  const burst = Buffer.concat(Array(1000).fill(maskedText(JSON.stringify({ _tag: 'tool.list_rooms', requestId: 'x' }).padEnd(130))));
  let writeFailed = false;
  sock.on('error', () => { writeFailed = true; });
  // Up to 30,000 requests, about 240 MB of replies. The client stops writing once the server has
  // closed it as a slow consumer: writing on into a closed socket would fail and throw away what
  // the server sent, close frame included, before the client reads it.
  for (let i = 0; i < 30 && !writeFailed && !sock.destroyed; i++) {
    sock.write(burst);
    await sleep(50);
    if ((await metrics(server.port)).parley_slow_consumer_closes_total > 0) break;
  }
  await sleep(1000);
  const grownMiB = (rssKiB(server.proc.pid) - before) / 1024;
  assert.ok(grownMiB < 32, `the server grew by ${grownMiB.toFixed(0)} MiB for one connection with --max-queue-bytes 65536`);

  // Bounded memory alone would also pass if the server simply stopped reading: it must have closed with 4008.
  assert.equal((await metrics(server.port)).parley_slow_consumer_closes_total, 1);
  const close = closeFrameIn(await readToEnd(sock));
  assert.ok(close, 'the server ended the connection without a close frame');
  assert.equal(close.code, 4008, `closed with ${close.code} (${close.reason}), not 4008`);
});
