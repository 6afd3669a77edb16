// SPDX-License-Identifier: MIT
// The page for people (web/), driven in Debian's chromium by playwright-core against the real server.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const {
  BINARY, SANITIZED, cleanEnv, eventually, issueToken, revokeToken, session, sleep, startServer, tempDir,
} = require('./harness');

// The browser is Debian's (scripts/install-deps.sh installs it); nothing is downloaded. Its absence is a
// failure, never a skip, so a machine without it cannot pass by testing nothing.
const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (apt-get install chromium)`);

// An ASan server answers slower; the page's own waits (5 s who_is_here, backoff) come on top.
const WAIT = SANITIZED ? 40000 : 20000;
const ROOT = path.resolve(__dirname, '..', '..');

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  if (browser) await browser.close();
});

// One person: a page in its own browser context (its own cookies), recording every console error,
// uncaught exception, CSP violation and dialog.
async function person(t, origin, query = '', { viewport = { width: 1200, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close().catch(() => {}));
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(`${origin}/${query}`);
  return page;
}

// Nothing went wrong on the page; `expected` lists console errors a test provokes on purpose
// (the browser reports every failed WebSocket or refused fetch as one).
function clean(page, expected = []) {
  const left = page.problems.filter((p) => !expected.some((re) => re.test(p)));
  assert.deepEqual(left, [], 'no console errors, page errors or CSP violations');
  assert.deepEqual(page.dialogs, [], 'no dialogs');
}

const origin = (server) => `http://127.0.0.1:${server.port}`;
const messageBox = (page) => page.getByRole('textbox', { name: 'Message' });
const sendButton = (page) => page.getByRole('button', { name: 'Send' });

// Waits until the element `selector` shows `text` (a string: exactly; a RegExp: matching).
const exactly = (s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
async function sees(page, selector, text) {
  await page.locator(selector, { hasText: typeof text === 'string' ? exactly(text) : text }).waitFor();
}

async function joinedAs(page, room, nickname) {
  await sees(page, '#room-title', room);
  await sees(page, '#room-me', typeof nickname === 'string' ? `you are ${nickname}` : nickname);
}

// The messages shown in the open room, in page order.
function shown(page) {
  return page.locator('#messages .msg').evaluateAll((els) => els.map((e) => ({
    seq: Number(e.dataset.seq),
    from: e.querySelector('.from').textContent,
    kind: (e.querySelector('.kind') || {}).textContent || null,
    body: e.querySelector('.body').textContent,
  })));
}
async function waitShown(page, body) {
  await eventually(async () => (await shown(page)).some((m) => m.body === body), WAIT, `the page to show ${JSON.stringify(body.slice(0, 40))}`);
}

// The people and agents listed under "Who is here".
function members(page) {
  return page.locator('#members .member').evaluateAll((els) => els.map((e) => ({
    nickname: e.firstChild.textContent,
    kind: (e.querySelector('.kind') || {}).textContent || null,
  })));
}

async function type(page, text) {
  await messageBox(page).fill(text);
  await messageBox(page).press('Enter');
}

// An agent: the MCP SDK client over stdio to its own `parley-tools mcp`, as in mcp.test.js.
async function agent(t, server) {
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp'],
    env: cleanEnv(server.dir, { PARLEY_SERVER: server.url }),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'parley-web-test', version: '1.0.0' }, { capabilities: {} });
  const pushes = [];
  client.fallbackNotificationHandler = async (n) => {
    if (n.method === 'notifications/claude/channel') pushes.push(n.params);
  };
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  return {
    pushes,
    async ok(name, args = {}) {
      const r = await client.callTool({ name, arguments: args });
      assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
      return r.structuredContent;
    },
  };
}

// A TCP relay between the page and the server that the test can cut, as a network blip does.
async function relay(t, server) {
  const sockets = new Set();
  let down = false;
  const srv = net.createServer((c) => {
    if (down) return c.destroy();
    const s = net.connect(server.port, '127.0.0.1');
    for (const x of [c, s]) {
      sockets.add(x);
      x.on('close', () => sockets.delete(x));
      x.on('error', () => {});
    }
    c.pipe(s);
    s.pipe(c);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const x of sockets) x.destroy();
    srv.close();
  });
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    cut() {
      down = true;
      for (const x of sockets) x.destroy();
    },
    restore() {
      down = false;
    },
  };
}

const WS_FAILED = [/WebSocket connection to .* failed/];

test('two people and an agent share a room and each sees the others', async (t) => {
  const server = await startServer(t);
  const alice = await person(t, origin(server), '?room=lobby&nickname=Alice');
  const bob = await person(t, origin(server), '?room=lobby&nickname=Bob');
  await joinedAs(alice, 'lobby', 'Alice');
  await joinedAs(bob, 'lobby', 'Bob');
  const helper = await agent(t, server);
  assert.equal((await helper.ok('join_room', { room: 'lobby', nickname: 'helper' })).nickname, 'helper');

  await type(alice, 'Morning! Can someone check the deploy?');
  await waitShown(bob, 'Morning! Can someone check the deploy?');
  await eventually(() => helper.pushes.length >= 1, WAIT, 'the agent to get Alice\'s message');
  assert.equal(helper.pushes[0].content, 'Morning! Can someone check the deploy?');
  assert.equal(helper.pushes[0].meta.from_nickname, 'Alice');

  await helper.ok('send_message', { room: 'lobby', body: 'The deploy of 4.2 finished at 09:12; all checks are green.' });
  await waitShown(alice, 'The deploy of 4.2 finished at 09:12; all checks are green.');
  await waitShown(bob, 'The deploy of 4.2 finished at 09:12; all checks are green.');

  await type(bob, 'Thanks, helper. Alice, the release notes are up too.');
  await waitShown(alice, 'Thanks, helper. Alice, the release notes are up too.');
  const read = await eventually(async () => {
    const r = await helper.ok('read_messages', { room: 'lobby' });
    return r.messages.some((m) => m.body.startsWith('Thanks, helper')) && r;
  }, WAIT, 'the agent to read Bob\'s message');
  assert.equal(read.messages.find((m) => m.body.startsWith('Thanks, helper')).fromNickname, 'Bob');

  // In seq order, each with its sender, people and agents marked.
  const onAlice = await shown(alice);
  assert.deepEqual(onAlice.map((m) => [m.from, m.kind]), [['Alice', 'person'], ['helper', 'agent'], ['Bob', 'person']]);
  assert.ok(onAlice[0].seq < onAlice[1].seq && onAlice[1].seq < onAlice[2].seq, JSON.stringify(onAlice));
  const expectMembers = [{ nickname: 'Alice', kind: 'person' }, { nickname: 'Bob', kind: 'person' }, { nickname: 'helper', kind: 'agent' }];
  await eventually(async () => JSON.stringify(await members(bob)) === JSON.stringify(expectMembers), WAIT,
                   `who is here to list ${JSON.stringify(expectMembers)}`);
  await alice.getByRole('button', { name: 'Refresh' }).click();
  await alice.locator('#all-rooms').getByText('3 here').waitFor();

  if (process.env.PARLEY_WEB_SCREENSHOT) await bob.screenshot({ path: path.resolve(ROOT, process.env.PARLEY_WEB_SCREENSHOT) });
  else assert.ok((await bob.screenshot()).length > 1000);
  clean(alice);
  clean(bob);
});

test('a deep link opens the room joined under the nickname; an invite is passed along; the keyboard alone joins', async (t) => {
  const server = await startServer(t);
  const page = await person(t, origin(server), '?room=x&nickname=Alice');
  await joinedAs(page, 'x', 'Alice');
  await page.locator('#tabs').getByRole('button', { name: 'x' }).waitFor();
  const peer = await session(server);
  await peer.join('x', 'peer');
  assert.deepEqual((await peer.ok('tool.who_is_here', { room: 'x' })).nicknames, ['Alice', 'peer']);

  // No nickname: the server assigns one. An invite code goes along to join_room, which ignores it today.
  const other = await person(t, origin(server), '?room=y&invite=c0de');
  await joinedAs(other, 'y', /^you are [a-z]+-[a-z]+$/);

  // Keyboard only: Tab to the room field, type, Tab to the nickname, type, Enter joins, focus lands on the message box.
  const kb = await person(t, origin(server));
  await sees(kb, '#status', 'connected');
  await kb.keyboard.press('Tab');
  assert.equal(await kb.evaluate(() => document.activeElement.id), 'join-room');
  await kb.keyboard.type('kb');
  await kb.keyboard.press('Tab');
  await kb.keyboard.type('Keys');
  await kb.keyboard.press('Enter');
  await joinedAs(kb, 'kb', 'Keys');
  await eventually(async () => (await kb.evaluate(() => document.activeElement.getAttribute('aria-label'))) === 'Message',
                   WAIT, 'focus on the message box');
  await peer.join('kb', 'watcher');
  await kb.keyboard.type('typed without a mouse');
  await kb.keyboard.press('Enter');
  assert.equal((await peer.message('kb', WAIT)).body, 'typed without a mouse');
  for (const p of [page, other, kb]) clean(p);
});

test('after the connection drops the page resumes its session and shows what was sent meanwhile', async (t) => {
  const server = await startServer(t);
  const net1 = await relay(t, server);
  const page = await person(t, net1.origin, '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const bob = await session(server);
  await bob.join('lobby', 'bob');
  await bob.sendMessage('lobby', 'before');
  await waitShown(page, 'before');

  net1.cut();
  await sees(page, '#status', /connection lost|reconnecting/);
  await bob.sendMessage('lobby', 'during one');
  await bob.sendMessage('lobby', 'during two');
  await sleep(800);
  net1.restore();
  await waitShown(page, 'during two');
  await sees(page, '#status', 'connected');
  assert.deepEqual((await shown(page)).map((m) => m.body), ['before', 'during one', 'during two']);
  assert.equal(await page.locator('#missed').isVisible(), false, 'an exact resume loses nothing, so no notice');
  assert.deepEqual((await bob.ok('tool.who_is_here', { room: 'lobby' })).nicknames, ['Alice', 'bob'], 'the same session, the same nickname');

  // The page still sends on the resumed session.
  await type(page, 'back');
  assert.equal((await bob.message('lobby', WAIT)).body, 'back');
  clean(page, WS_FAILED);
});

test('when the resume fails (replay overflow) the page starts afresh, rejoins and says messages may be missed', async (t) => {
  const server = await startServer(t, { args: ['--replay-capacity', '2'] });
  const net1 = await relay(t, server);
  const page = await person(t, net1.origin, '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const bob = await session(server);
  await bob.join('lobby', 'bob');
  assert.equal(await page.locator('#missed').isVisible(), false);
  net1.cut();
  for (let i = 1; i <= 5; i++) await bob.sendMessage('lobby', `lost ${i}`);
  net1.restore();
  await page.getByText('Some messages may have been missed', { exact: false }).waitFor();
  await joinedAs(page, 'lobby', 'Alice');
  await eventually(async () => {
    const who = await bob.ok('tool.who_is_here', { room: 'lobby' });
    return who.nicknames.includes('Alice');
  }, WAIT, 'the page to rejoin as Alice');
  await bob.sendMessage('lobby', 'after');
  await waitShown(page, 'after');
  clean(page, WS_FAILED);
});

test('a token is needed on a public bind: the form, a bad token, sign-in by cookie, the room, sign-out', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  const token = issueToken(dir, db, 'people');
  const server = await startServer(t, { dir, db, args: ['--bind', '0.0.0.0'] });
  const page = await person(t, origin(server), '?room=ops&nickname=Carol');
  const tokenBox = page.getByLabel('Access token');
  await tokenBox.waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);

  await tokenBox.fill(`parley_tok_${'A'.repeat(43)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await sees(page, '#signin-error', /\S/);
  assert.equal(await tokenBox.inputValue(), '', 'the token field is cleared after every submit');

  await tokenBox.fill(token);
  await tokenBox.press('Enter');
  await joinedAs(page, 'ops', 'Carol');
  assert.equal(await tokenBox.inputValue(), '');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
  const cookies = await page.context().cookies();
  assert.equal(cookies.length, 1, JSON.stringify(cookies));
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.ok(!cookies[0].value.includes(token), 'the cookie is not the token itself');

  const dave = await session(server, { authToken: token });
  await dave.join('ops', 'dave');
  await type(page, 'signed in and talking');
  assert.equal((await dave.message('ops', WAIT)).body, 'signed in and talking');
  await dave.sendMessage('ops', 'hello Carol');
  await waitShown(page, 'hello Carol');

  const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, location.href, document.documentElement.outerHTML]));
  assert.ok(!stored.includes(token), 'the token is nowhere in storage, the URL or the DOM');
  assert.ok(!page.url().includes('parley_tok'));

  await page.getByRole('button', { name: 'Sign out' }).click();
  await tokenBox.waitFor();
  assert.deepEqual(await page.evaluate(async () => (await fetch('/session', { credentials: 'same-origin' })).json()),
                   { tokenRequired: true, signedIn: false });
  await page.reload();
  await tokenBox.waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);

  // Signed in again, then the token is revoked: the server closes 4000 and the form comes back.
  await tokenBox.fill(token);
  await tokenBox.press('Enter');
  await joinedAs(page, 'ops', 'Carol');
  revokeToken(dir, db, 'people');
  await tokenBox.waitFor({ state: 'visible' });
  clean(page, [/status of 401/, ...WS_FAILED]);
});

test('a body with markup is shown as text, never run; long words wrap', async (t) => {
  const server = await startServer(t);
  const page = await person(t, origin(server), '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const mallory = await session(server);
  await mallory.join('lobby', 'mallory');
  const evil = '<img src=x onerror=alert(1)>';
  await mallory.sendMessage('lobby', evil);
  const long = 'x'.repeat(3000);
  await mallory.sendMessage('lobby', long);
  await mallory.sendMessage('lobby', 'see https://example.invalid/ and <b>bold</b>');
  await waitShown(page, 'see https://example.invalid/ and <b>bold</b>');
  const bodies = await shown(page);
  assert.equal(bodies[0].body, evil);
  assert.equal(await page.locator('#messages img, #messages a, #messages b').count(), 0, 'no element made from a body');
  const fits = await page.locator('#messages').evaluate((ol) => ol.parentElement.scrollWidth <= ol.parentElement.clientWidth);
  assert.ok(fits, 'a 3000-character word wraps instead of widening the page');
  await sleep(300);
  clean(page);
});

test('Enter sends, Shift+Enter breaks the line, the byte counter, the 8 KiB limit, errors shown', async (t) => {
  const server = await startServer(t);
  const page = await person(t, origin(server), '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const bob = await session(server);
  await bob.join('lobby', 'bob');
  const box = messageBox(page);
  await sendButton(page).waitFor();

  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.pressSequentially('line two');
  assert.equal(await box.inputValue(), 'line one\nline two');
  await sees(page, '#bytes', `${8192 - 17} of 8192 bytes left`);
  await box.press('Enter');
  assert.equal((await bob.message('lobby', WAIT)).body, 'line one\nline two');
  assert.equal(await box.inputValue(), '', 'the box empties once sent');
  await waitShown(page, 'line one\nline two');

  // Bytes of UTF-8, not characters: 4096 'é' fill the limit exactly, one more is past it.
  await box.fill('é'.repeat(4096));
  await sees(page, '#bytes', '0 of 8192 bytes left');
  assert.equal(await sendButton(page).isEnabled(), true);
  await box.fill('é'.repeat(4096) + '!');
  await sees(page, '#bytes', '1 byte over the 8192-byte limit');
  assert.equal(await sendButton(page).isDisabled(), true);
  await box.press('Enter');
  await sleep(300);
  assert.equal(bob.frames.filter((f) => f._tag === 'room.message').length, 0, 'nothing past the limit is sent');
  await box.fill('é'.repeat(4096));
  await sendButton(page).click();
  assert.equal((await bob.message('lobby', WAIT)).body, 'é'.repeat(4096));

  // Past the send budget (bursts of 20) the server's RateLimitedError is shown with its wait.
  // 30 Enter presses in one go, faster than the budget refills.
  await box.evaluate((b) => {
    for (let i = 0; i < 30; i++) {
      b.value = `quick ${i}`;
      b.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    }
  });
  await sees(page, '#send-error', /RateLimitedError/);
  assert.match(await page.locator('#send-error').textContent(), /try again in/);
  clean(page);
});

test('at phone width the message box and Send are on screen, and nothing scrolls sideways', async (t) => {
  const server = await startServer(t);
  const page = await person(t, origin(server), '?room=lobby&nickname=Alice', { viewport: { width: 375, height: 700 } });
  await joinedAs(page, 'lobby', 'Alice');
  for (const control of [messageBox(page), sendButton(page)]) {
    assert.equal(await control.isVisible(), true);
    const box = await control.boundingBox();
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= 375 && box.y + box.height <= 700, JSON.stringify(box));
  }
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375));
  await type(page, 'from a phone');
  await waitShown(page, 'from a phone');
  clean(page);
});

test('at most the last 2000 messages of a room stay on the page, and the page says so', async (t) => {
  const server = await startServer(t, { args: ['--rate-capacity', '5000', '--rate-per-second', '5000'] });
  const page = await person(t, origin(server), '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const bob = await session(server);
  await bob.join('lobby', 'bob');
  const total = 2010;
  for (let i = 1; i <= total; i++) bob.send({ _tag: 'tool.send_message', requestId: `s${i}`, room: 'lobby', body: `n${i}` });
  await waitShown(page, `n${total}`);
  const kept = await shown(page);
  assert.equal(kept.length, 2000);
  assert.equal(kept[0].body, `n${total - 1999}`);
  await page.getByText('older messages are not kept on this page', { exact: false }).waitFor();
  // Every message was acked once rendered: the server's record lets a fresh resume replay nothing.
  clean(page);
});
