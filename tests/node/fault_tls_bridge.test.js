// SPDX-License-Identifier: MIT
// Fault matrix, TLS failures seen from the MCP bridge: a server whose certificate has expired, is for
// another host, or comes from a CA the bridge does not trust. Each must give a clear error on the
// bridge's stderr (at the default log level, naming the cause), an MCP error on the tool call, retries
// with backoff, and no crash. The certificates are made here with `openssl ca` (dates in the past need
// it; `req -x509` cannot back-date).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { BINARY, cleanEnv, sleep, startServer, tempDir } = require('./harness');

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { timeout: 10000 }).status === 0;

function openssl(dir, args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}:\n${r.stderr}`);
}

// A CA (ca.pem) and leaves signed by it; `name` + .pem/.key.
function makeCa(dir, name) {
  fs.mkdirSync(path.join(dir, name));
  const d = path.join(dir, name);
  fs.writeFileSync(path.join(d, 'ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', 'dir = .', 'database = index.txt', 'new_certs_dir = .', 'serial = serial',
    'default_md = sha256', 'policy = p', 'copy_extensions = copy', 'unique_subject = no', '[p]', 'commonName = supplied', '',
  ].join('\n'));
  fs.writeFileSync(path.join(d, 'index.txt'), '');
  fs.writeFileSync(path.join(d, 'serial'), '01\n');
  openssl(d, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=parley test ${name}`, '-keyout', 'ca.key', '-out', 'ca.pem']);
  return {
    ca: path.join(d, 'ca.pem'),
    leaf(leafName, { san = 'DNS:localhost,IP:127.0.0.1', start, end } = {}) {
      openssl(d, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=parley-leaf',
        '-addext', `subjectAltName=${san}`, '-keyout', `${leafName}.key`, '-out', `${leafName}.csr`]);
      const dates = start ? ['-startdate', start, '-enddate', end] : ['-days', '1'];
      openssl(d, ['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${leafName}.csr`,
        '-out', `${leafName}.pem`, '-notext', ...dates]);
      return { cert: path.join(d, `${leafName}.pem`), key: path.join(d, `${leafName}.key`) };
    },
  };
}

async function bridge(t, dir, url, ca) {
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp', '--server', url, '--ca-file', ca],  // the default log level: what a user sees
    env: cleanEnv(dir),
    stderr: 'pipe',
  });
  const b = { stderr: '', exited: null };
  transport.stderr.setEncoding('utf8');
  transport.stderr.on('data', (d) => (b.stderr += d));
  const client = new Client({ name: 'parley-fault', version: '1.0.0' }, { capabilities: {} });
  client.onclose = () => (b.exited = true);
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  b.client = client;
  b.call = (name, args = {}) => client.callTool({ name, arguments: args });
  return b;
}

test('the bridge against bad server certificates: a clear error, an MCP error, backoff, no crash', { skip: !HAVE_OPENSSL && 'no openssl', timeout: 120000 }, async (t) => {
  const dir = tempDir(t);
  const trusted = makeCa(dir, 'trusted');
  const stranger = makeCa(dir, 'stranger');
  const cases = [
    { name: 'expired', leaf: trusted.leaf('expired', { start: '20200101000000Z', end: '20200201000000Z' }), cause: /expired/i },
    { name: 'wrong host', leaf: trusted.leaf('wronghost', { san: 'DNS:wrong.example' }), cause: /not valid for 127\.0\.0\.1|mismatch/i },
    { name: 'unknown CA', leaf: stranger.leaf('stranger'), cause: /issuer|not trusted|unknown ca/i },
  ];

  // The control: a good certificate from the trusted CA works.
  const good = trusted.leaf('good');
  const okServer = await startServer(t, { dir, args: ['--tls-cert', good.cert, '--tls-key', good.key] });
  const control = await bridge(t, dir, `wss://127.0.0.1:${okServer.port}/`, trusted.ca);
  const deadline = Date.now() + 15000;
  for (;;) {
    const r = await control.call('list_rooms');
    if (!r.isError) break;
    assert.ok(Date.now() < deadline, `the control bridge never connected: ${JSON.stringify(r.content)}\n${control.stderr}`);
    await sleep(100);
  }

  for (const c of cases) {
    const server = await startServer(t, { dir, args: ['--tls-cert', c.leaf.cert, '--tls-key', c.leaf.key] });
    const url = `wss://127.0.0.1:${server.port}/`;
    const b = await bridge(t, dir, url, trusted.ca);
    // The tool call fails with an MCP error (isError), not a hang and not a JSON-RPC failure.
    await sleep(300);
    const r = await b.call('list_rooms');
    assert.equal(r.isError, true, `${c.name}: ${JSON.stringify(r)}`);
    const text = r.content.map((x) => x.text).join(' ');
    assert.match(text, /unreachable|retrying/i, `${c.name}: ${text}`);
    // Retries with backoff: several attempts reach the server's TLS layer, spaced out, while the bridge lives.
    const t0 = Date.now();
    await sleep(4000);
    const attempts = (server.stderr.match(/TLS handshake failed/g) || []).length;
    const r2 = await b.call('list_rooms');
    assert.equal(r2.isError, true);
    // The agent hears the cause too, not only the operator reading stderr.
    const text2 = r2.content.map((x) => x.text).join(' ');
    assert.match(text2, c.cause, `${c.name}: the tool error does not name the cause: ${text2}`);
    assert.equal(b.exited, null, `${c.name}: the bridge exited\n${b.stderr}`);
    // The cause on stderr, once, at the default log level.
    const lines = b.stderr.split('\n').filter((l) => / (WARN|ERROR) /.test(l));
    assert.ok(lines.length >= 1, `${c.name}: nothing at warn or error on the bridge's stderr:\n${b.stderr}`);
    assert.match(lines.join('\n'), c.cause, `${c.name}: the cause is not named:\n${b.stderr}`);
    assert.ok(lines.length <= 3, `${c.name}: the same failure is repeated at warn:\n${b.stderr}`);
    // Backoff: 50-100 ms, 100-200 ms, ... doubling to 10 s, so a few attempts in 4 s, not hundreds.
    assert.ok(attempts >= 2 && attempts <= 20, `${c.name}: ${attempts} attempts in about 4 s`);
    console.log(`FIGURE tls_bridge_${c.name.replace(' ', '_')}_stderr: ${lines[0].replace(/^\S+ /, '')}`);
    console.log(`FIGURE tls_bridge_${c.name.replace(' ', '_')}_tool_error: ${text2}`);
    console.log(`FIGURE tls_bridge_${c.name.replace(' ', '_')}_attempts_seen_by_server_in_${((Date.now() - t0) / 1000 + 0.3).toFixed(1)}s: ${attempts}`);
    await b.client.close();
  }
});
