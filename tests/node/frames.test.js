// SPDX-License-Identifier: MIT
// RFC 6455 refusals on the wire: an unmasked frame is 1002, invalid UTF-8 is 1007, a message over the limit is 1009.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { connect, session, startServer, withTimeout } = require('./harness');

// One FIN frame; masked as a client must, unless told otherwise.
function frame(opcode, payload, { masked = true } = {}) {
  const n = payload.length;
  const head = [0x80 | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (n <= 125) head.push(maskBit | n);
  else if (n <= 0xffff) head.push(maskBit | 126, n >> 8, n & 0xff);
  else head.push(maskBit | 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < n; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

// Writes raw bytes under ws's feet, on the socket ws already upgraded.
function writeRaw(c, bytes) {
  c.ws._socket.write(bytes);
}

test('an unmasked client frame is closed with 1002', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  writeRaw(c, frame(0x1, Buffer.from('{"_tag":"tool.list_rooms","requestId":"x"}'), { masked: false }));
  assert.equal((await c.waitClose()).code, 1002);
});

test('other protocol errors are 1002 too: reserved bits, an unknown opcode, a lone continuation', async (t) => {
  const server = await startServer(t);
  for (const bytes of [
    Buffer.from([0xc1, 0x80, 1, 2, 3, 4]),  // RSV1 without an extension
    Buffer.from([0x83, 0x80, 1, 2, 3, 4]),  // opcode 3
    frame(0x0, Buffer.from('x')),           // continuation with no message
  ]) {
    const c = await session(server);
    writeRaw(c, bytes);
    assert.equal((await c.waitClose()).code, 1002);
  }
});

test('a text message that is not UTF-8 is closed with 1007, before and after hello', async (t) => {
  const server = await startServer(t);
  const before = await connect(server);
  writeRaw(before, frame(0x1, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])));
  assert.equal((await before.waitClose()).code, 1007);
  const after = await session(server);
  writeRaw(after, frame(0x1, Buffer.from([0xed, 0xa0, 0x80])));  // an encoded surrogate
  assert.equal((await after.waitClose()).code, 1007);
  const binary = await session(server);
  writeRaw(binary, frame(0x2, Buffer.from([0xff, 0xfe])));  // binary frames are read as UTF-8 JSON
  assert.equal((await binary.waitClose()).code, 1007);
});

test('a 64 KiB message passes the codec, 64 KiB + 1 is closed with 1009', async (t) => {
  const server = await startServer(t);
  const c = await session(server);
  c.send(JSON.stringify({ _tag: 'tool.list_rooms', requestId: 'big', pad: 'p'.repeat(65536 - 60) }).padEnd(65536, ' '));
  assert.equal((await c.nextTagged('tool.ok')).requestId, 'big');
  c.send('x'.repeat(65537));
  assert.equal((await c.waitClose()).code, 1009);
});

test('--max-message-bytes lowers the message limit', async (t) => {
  const server = await startServer(t, { args: ['--max-message-bytes', '1024'] });
  const c = await session(server);
  c.send(JSON.stringify({ _tag: 'tool.list_rooms', requestId: 'ok' }).padEnd(1024, ' '));
  assert.equal((await c.nextTagged('tool.ok')).requestId, 'ok');
  c.send('y'.repeat(1025));
  assert.equal((await c.waitClose()).code, 1009);
});

test('a raw socket: the server answers the upgrade, a ping with a pong, and an unmasked frame with close 1002', async (t) => {
  const server = await startServer(t);
  const sock = net.connect(server.port, '127.0.0.1');
  t.after(() => sock.destroy());
  let data = Buffer.alloc(0);
  let wake = () => {};
  sock.on('data', (d) => {
    data = Buffer.concat([data, d]);
    wake();
  });
  const ended = new Promise((resolve) => sock.on('close', resolve));
  const until = (pred, what) =>
    withTimeout(
      (async () => {
        while (!pred()) await new Promise((r) => (wake = r));
      })(),
      5000,
      what,
    );
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await until(() => data.indexOf('\r\n\r\n') >= 0, 'the 101');
  const end = data.indexOf('\r\n\r\n') + 4;
  const head = data.subarray(0, end).toString();
  assert.match(head, /^HTTP\/1\.1 101 /);
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}\r\n`, 'i'));
  data = data.subarray(end);

  sock.write(frame(0x9, Buffer.from('are you there')));
  await until(() => data.length >= 2 + 13, 'the pong');
  assert.deepEqual([...data.subarray(0, 2)], [0x8a, 13]);
  assert.equal(data.subarray(2, 15).toString(), 'are you there');
  data = data.subarray(15);

  sock.write(frame(0x1, Buffer.from('{}'), { masked: false }));
  await until(() => data.length >= 4, 'the close frame');
  assert.equal(data[0], 0x88);
  assert.equal(data.readUInt16BE(2), 1002);
  await withTimeout(ended, 5000, 'the server to close the TCP connection');
});
