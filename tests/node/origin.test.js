// SPDX-License-Identifier: MIT
// Browsers and rebinding: the Origin of an upgrade and the Host of every request, against the real server.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { connect, httpGet, httpRequest, runTool, session, startServer, tempDir } = require('./harness');

// The status an upgrade gets: 101 opens, anything else is the refusal's status.
async function upgradeStatus(server, headers) {
  try {
    const c = await connect(server, { headers });
    c.ws.terminate();
    return 101;
  } catch (e) {
    const m = /^HTTP (\d{3}) /.exec(e.message);
    assert.ok(m, e.message);
    return Number(m[1]);
  }
}

test('an upgrade from a web page is refused with 403 unless its origin is allowed', async (t) => {
  const server = await startServer(t, { args: ['--allow-origin', 'https://app.example'] });
  const own = `http://127.0.0.1:${server.port}`;
  assert.equal(await upgradeStatus(server, { Origin: own }), 101);
  assert.equal(await upgradeStatus(server, { Origin: 'https://app.example' }), 101);
  assert.equal(await upgradeStatus(server, { Origin: 'https://app.example:443' }), 101);
  for (const origin of ['https://evil.example', 'https://app.example.evil.example', 'http://app.example',
    'https://app.example:8443', 'null', `http://127.0.0.1:${server.port + 1}`]) {
    assert.equal(await upgradeStatus(server, { Origin: origin }), 403, origin);
  }
  // Without an Origin (native clients, the bridge) nothing changes.
  const native = await session(server);
  await native.close();
  assert.match(server.stderr, /refused: origin not allowed/);
});

test('a page that was refused could neither say hello nor join', async (t) => {
  const server = await startServer(t);
  assert.equal(await upgradeStatus(server, { Origin: 'https://evil.example' }), 403);
  const r = await httpGet(server.port, '/metrics');
  assert.match(r.body, /^parley_sessions 0$/m);
});

test('PARLEY_ALLOW_ORIGINS takes a comma-separated list; a malformed origin refuses to start', async (t) => {
  const server = await startServer(t, { env: { PARLEY_ALLOW_ORIGINS: 'https://a.example,http://b.example:8080' } });
  assert.equal(await upgradeStatus(server, { Origin: 'https://a.example' }), 101);
  assert.equal(await upgradeStatus(server, { Origin: 'http://b.example:8080' }), 101);
  assert.equal(await upgradeStatus(server, { Origin: 'http://b.example' }), 403);

  const dir = tempDir(t);
  for (const bad of ['app.example', 'https://app.example/path', 'null', 'ftp://x']) {
    const r = runTool(dir, ['server', '--port', '0', '--db', `${dir}/x.db`, '--allow-origin', bad]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--allow-origin: origin .* write it as http\(s\):\/\/host\[:port\]/);
  }
});

test('a loopback server answers only to loopback Host names, on every route', async (t) => {
  const server = await startServer(t);
  for (const host of ['localhost', `localhost:${server.port}`, `127.0.0.1:${server.port}`, '[::1]']) {
    assert.equal((await httpRaw(server.port, '/healthz', host)).status, 200, host);
  }
  for (const host of ['evil.example', `evil.example:${server.port}`, 'localhost.evil.example', '192.168.1.10']) {
    for (const path of ['/healthz', '/metrics', '/']) {
      assert.equal((await httpRaw(server.port, path, host)).status, 403, `${host} ${path}`);
    }
    assert.equal(await upgradeStatus(server, { Host: host }), 403, host);
  }
  const noHost = await httpRequest(server.port, 'GET /healthz HTTP/1.1\r\n\r\n');
  assert.equal(noHost.status, 400);
});

function httpRaw(port, path, host) {
  return httpRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
}

test('a keep-alive client makes back-to-back requests without a hang-up error', async (t) => {
  const server = await startServer(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
    }).on('error', reject);
  });
  for (let i = 0; i < 20; ++i) {
    const r = await get(i % 2 ? '/metrics' : '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.connection, 'close');
  }
});
