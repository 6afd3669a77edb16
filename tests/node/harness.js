// SPDX-License-Identifier: MIT
// Shared by the integration tests: start the real parley-tools server, talk to it with ws, never hang.
'use strict';

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  throw new Error('tests/node/node_modules is missing or incomplete: run `npm ci --prefix tests/node` first');
}

const BINARY = process.env.PARLEY_TOOLS;
if (!BINARY) throw new Error('set PARLEY_TOOLS to the parley-tools executable (ctest does this)');

const CLIENT_VERSION = '0.1.0';
const DEFAULT_TIMEOUT_MS = 5000;

// Nothing from the caller's environment may change the server, and nothing may touch a real home.
function cleanEnv(dir, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PARLEY_')) env[k] = v;
  env.HOME = dir;
  env.XDG_DATA_HOME = path.join(dir, 'xdg');
  return { ...env, ...extra };
}

// A fresh directory removed when the test ends.
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-it-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs `parley-tools ARGS...` to completion (token commands, refused starts).
function runTool(dir, args, timeoutMs = 10000) {
  const r = spawnSync(BINARY, args, { env: cleanEnv(dir), encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw r.error;
  return r;
}

function issueToken(dir, db, label) {
  const r = runTool(dir, ['token', 'issue', '--label', label, '--db', db]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function revokeToken(dir, db, label) {
  const r = runTool(dir, ['token', 'revoke', '--label', label, '--db', db]);
  assert.equal(r.status, 0, r.stderr);
}

// Starts `parley-tools server --port 0` and resolves once it prints its one stdout line.
// The server is killed when the test ends, whatever happened.
// `port` reuses a port (a restart that clients and bridges find at the same URL).
// `descriptorLimit` starts the server under that hard RLIMIT_NOFILE, as a shell with
// `ulimit -n` would.
async function startServer(t, { dir, db, args = [], env = {}, descriptorLimit, port = 0 } = {}) {
  dir = dir || tempDir(t);
  db = db || path.join(dir, 'parley.db');
  let argv = [BINARY, 'server', '--port', String(port), '--db', db, '--log-level', 'debug', ...args];
  if (descriptorLimit) argv = ['/bin/sh', '-c', `ulimit -n ${Number(descriptorLimit)} && exec "$0" "$@"`, ...argv];
  const proc = spawn(argv[0], argv.slice(1), {
    env: cleanEnv(dir, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { proc, dir, db, stderr: '', stdout: '', exited: null };
  server.exit = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      server.exited = { code, signal };
      resolve(server.exited);
    });
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    server.stderr += d;
  });
  proc.stdout.setEncoding('utf8');
  t.after(() => stopServer(server));

  const line = await withTimeout(
    new Promise((resolve, reject) => {
      proc.stdout.on('data', (d) => {
        server.stdout += d;
        const nl = server.stdout.indexOf('\n');
        if (nl >= 0) resolve(server.stdout.slice(0, nl));
      });
      server.exit.then((e) => reject(new Error(`server exited (${JSON.stringify(e)}) before listening:\n${server.stderr}`)));
    }),
    10000,
    'the server to print its listening line',
  );
  const m = /^listening (wss?):\/\/([^:]+|\[[^\]]+\]):(\d+)$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  server.scheme = m[1];
  server.host = m[2];
  server.port = Number(m[3]);
  server.url = `${m[1]}://127.0.0.1:${server.port}/`;
  return server;
}

// SIGTERM, then SIGKILL if it does not go within 3 s.
async function stopServer(server) {
  if (server.exited) return server.exited;
  server.proc.kill('SIGTERM');
  try {
    return await withTimeout(server.exit, 3000, 'the server to exit');
  } catch {
    server.proc.kill('SIGKILL');
    return server.exit;
  }
}

// A ws client that queues every frame it receives, so tests can wait for the next one.
class client {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.nextRequest = 0;
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      const text = data.toString('utf8');
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = { _tag: '(not json)', text, isBinary };
      }
      this.frames.push(frame);
      this.wake();
    });
    ws.on('error', () => {});  // surfaced as the close event
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  // The first queued frame matching `pred`, removed from the queue; waits for one to arrive.
  async next(pred = () => true, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a frame') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; queued: ${JSON.stringify(this.frames).slice(0, 500)}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  nextTagged(tag, timeoutMs) {
    return this.next((f) => f._tag === tag, timeoutMs, tag);
  }

  send(frame) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async hello(fields = {}) {
    this.send({ _tag: 'hello', clientVersion: CLIENT_VERSION, ...fields });
    return this.next((f) => f._tag === 'hello.ok' || f._tag === 'hello.err', DEFAULT_TIMEOUT_MS, 'hello.ok or hello.err');
  }

  // Sends a tool frame and resolves with its tool.ok or tool.err.
  async call(tag, fields = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const requestId = `r${++this.nextRequest}`;
    this.send({ _tag: tag, requestId, ...fields });
    return this.next(
      (f) => (f._tag === 'tool.ok' || f._tag === 'tool.err') && f.requestId === requestId,
      timeoutMs,
      `the answer to ${tag} ${requestId}`,
    );
  }

  // Like call(), but the answer must be tool.ok; returns its result.
  async ok(tag, fields = {}) {
    const answer = await this.call(tag, fields);
    assert.equal(answer._tag, 'tool.ok', `${tag} ${JSON.stringify(fields).slice(0, 200)} → ${JSON.stringify(answer)}`);
    return answer.result;
  }

  join(room, nickname) {
    return this.ok('tool.join_room', nickname === undefined ? { room } : { room, nickname });
  }

  sendMessage(room, body, extra = {}) {
    return this.ok('tool.send_message', { room, body, ...extra });
  }

  message(room, timeoutMs) {
    return this.next((f) => f._tag === 'room.message' && (!room || f.room === room), timeoutMs, `a room.message in ${room}`);
  }

  // Waits for the close event; a close that does not come in time fails the test.
  waitClose(timeoutMs = DEFAULT_TIMEOUT_MS) {
    return withTimeout(this.closed, timeoutMs, 'the connection to close');
  }

  close(code = 1000) {
    this.ws.close(code);
    return this.waitClose();
  }

  // Drops the TCP connection without a close frame.
  terminate() {
    this.ws.terminate();
    return this.waitClose();
  }
}

// Opens a WebSocket to the server; `options` go to ws (headers, ca, ...).
async function connect(server, options = {}) {
  const url = typeof server === 'string' ? server : server.url;
  const ws = new WebSocket(url, { handshakeTimeout: DEFAULT_TIMEOUT_MS, ...options });
  const c = new client(ws);
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode} instead of an upgrade`)));
      ws.once('error', reject);
    }),
    DEFAULT_TIMEOUT_MS + 1000,
    `a WebSocket to ${url}`,
  );
  return c;
}

// Connects and completes hello; the result has the client and its session.
async function session(server, helloFields = {}, options = {}) {
  const c = await connect(server, options);
  const h = await c.hello(helloFields);
  assert.equal(h._tag, 'hello.ok', JSON.stringify(h));
  c.session = h;
  return c;
}

// One HTTP/1.1 request over a raw socket; resolves with { status, headers, body, raw }.
function httpRequest(port, head, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let raw = '';
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(head));
      sock.on('data', (d) => {
        raw += d;
      });
      sock.on('error', reject);
      sock.on('close', () => {
        const end = raw.indexOf('\r\n\r\n');
        const headLines = (end >= 0 ? raw.slice(0, end) : raw).split('\r\n');
        const status = Number((/^HTTP\/1\.1 (\d{3})/.exec(headLines[0]) || [])[1]);
        const headers = {};
        for (const l of headLines.slice(1)) {
          const c = l.indexOf(':');
          if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
        }
        resolve({ status, headers, body: end >= 0 ? raw.slice(end + 4) : '', raw });
      });
    }),
    timeoutMs,
    `an HTTP answer to ${JSON.stringify(head.split('\r\n')[0])}`,
  );
}

function httpGet(port, target, extraHeaders = '') {
  return httpRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extraHeaders}\r\n`);
}

// Prometheus text → { name: number } for the unlabelled samples parley exports.
async function metrics(port) {
  const r = await httpGet(port, '/metrics');
  assert.equal(r.status, 200);
  const out = {};
  for (const line of r.body.split('\n')) {
    const m = /^(parley_[a-z_]+) (\d+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// Whether the binary under test is built with AddressSanitizer, whose shadow memory and
// quarantine change what RSS means. A GCC build links libasan dynamically, so the binary
// itself holds only its references to the runtime, such as __asan_init.
const SANITIZED = BINARY ? fs.readFileSync(BINARY).includes('__asan_init') : false;

// Polls `fn` until it returns a truthy value or the time runs out.
async function eventually(fn, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

module.exports = {
  BINARY,
  SANITIZED,
  CLIENT_VERSION,
  WebSocket,
  cleanEnv,
  connect,
  eventually,
  httpGet,
  httpRequest,
  issueToken,
  metrics,
  revokeToken,
  runTool,
  session,
  sleep,
  startServer,
  stopServer,
  tempDir,
  withTimeout,
};
