// SPDX-License-Identifier: MIT
// Tokens on a non-loopback bind: the start-up refusal, hello with and without a token, the Bearer header, revocation.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { connect, eventually, issueToken, revokeToken, runTool, session, startServer, tempDir } = require('./harness');

const PUBLIC = ['--bind', '0.0.0.0'];

test('a non-loopback bind without any token refuses to start (exit 2)', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const r = runTool(dir, ['server', '--bind', '0.0.0.0', '--port', '0', '--db', db]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /token issue/);
  // A revoked token is no token at all.
  issueToken(dir, db, 'gone');
  revokeToken(dir, db, 'gone');
  assert.equal(runTool(dir, ['server', '--bind', '0.0.0.0', '--port', '0', '--db', db]).status, 2);
});

test('with a token issued: no token is 4000 AuthRequiredError, a wrong one 4000 BadTokenError, the right one works', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const token = issueToken(dir, db, 'agent-a');
  assert.match(token, /^parley_tok_[A-Za-z0-9_-]{43}$/);
  const server = await startServer(t, { dir, db, args: PUBLIC });
  assert.match(server.stderr + server.stdout, /0\.0\.0\.0/);

  const none = await connect(server);
  let h = await none.hello();
  assert.deepEqual([h._tag, h.code], ['hello.err', 'AuthRequiredError']);
  assert.equal((await none.waitClose()).code, 4000);

  const wrong = await connect(server);
  h = await wrong.hello({ authToken: token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A') });
  assert.deepEqual([h._tag, h.code], ['hello.err', 'BadTokenError']);
  assert.equal((await wrong.waitClose()).code, 4000);

  const right = await session(server, { authToken: token });
  assert.equal((await right.join('r', 'a')).room, 'r');
  // The use is recorded off the hello's path, within about a second.
  await eventually(() => {
    const row = runTool(dir, ['token', 'list', '--db', db]).stdout.split('\n').find((l) => l.startsWith('agent-a'));
    return row && !/ never /.test(row);
  }, 4000, 'token list to show the use');

  // The same token in the upgrade's Authorization header; hello.authToken wins when both are given.
  const header = await session(server, {}, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal((await header.join('r', 'b')).membersCount, 2);
  const lower = await session(server, {}, { headers: { Authorization: `bearer ${token}` } });
  await lower.close();
  const both = await connect(server, { headers: { Authorization: `Bearer ${token}` } });
  h = await both.hello({ authToken: 'parley_tok_' + 'x'.repeat(43) });
  assert.equal(h.code, 'BadTokenError');
  assert.equal((await both.waitClose()).code, 4000);
  const badHeader = await connect(server, { headers: { Authorization: 'Bearer nope' } });
  assert.equal((await badHeader.hello()).code, 'BadTokenError');

  // A resume needs the reconnect token, not the bearer token.
  await right.terminate();
  const back = await session(server, {
    resume: { sessionId: right.session.sessionId, reconnectToken: right.session.reconnectToken, lastAckedSeqByRoom: {} },
  });
  assert.equal(back.session.sessionId, right.session.sessionId);
  for (const c of [back, header]) await c.close();
});

test('revoking a token closes its live sessions with 4000 and refuses it afterwards with TokenRevokedError', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const a = issueToken(dir, db, 'agent-a');
  const b = issueToken(dir, db, 'agent-b');
  const server = await startServer(t, { dir, db, args: PUBLIC });
  const alice = await session(server, { authToken: a });
  const alice2 = await session(server, {}, { headers: { Authorization: `Bearer ${a}` } });
  const bob = await session(server, { authToken: b });
  await alice.join('r', 'alice');
  await bob.join('r', 'bob');

  const started = Date.now();
  revokeToken(dir, db, 'agent-a');
  assert.equal((await alice.waitClose(4000)).code, 4000);
  assert.equal((await alice2.waitClose(4000)).code, 4000);
  assert.ok(Date.now() - started < 3500, `revocation took ${Date.now() - started} ms`);
  // Its sessions ended: gone from the room, and not resumable.
  assert.deepEqual((await bob.ok('tool.who_is_here', { room: 'r' })).nicknames, ['bob']);
  const resume = await connect(server);
  const r = await resume.hello({
    resume: { sessionId: alice.session.sessionId, reconnectToken: alice.session.reconnectToken, lastAckedSeqByRoom: {} },
  });
  assert.equal(r.code, 'UnknownSessionError');

  const again = await connect(server);
  const h = await again.hello({ authToken: a });
  assert.deepEqual([h._tag, h.code], ['hello.err', 'TokenRevokedError']);
  assert.equal((await again.waitClose()).code, 4000);
  const viaHeader = await connect(server, { headers: { Authorization: `Bearer ${a}` } });
  assert.equal((await viaHeader.hello()).code, 'TokenRevokedError');

  // The other token is untouched.
  assert.equal(bob.closeInfo, null);
  await bob.sendMessage('r', 'still here');
  await bob.close();
});
