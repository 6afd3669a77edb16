// SPDX-License-Identifier: MIT
// Shared by the web page's tests: Debian's chromium driven by playwright-core, one context per person,
// every console error and CSP violation recorded; an MCP agent; a TCP relay the test can cut.
'use strict';

const { before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { BINARY, SANITIZED, cleanEnv, eventually } = require('./harness');

// The browser is Debian's (scripts/install-deps.sh installs it); nothing is downloaded. Its absence is a
// failure, never a skip, so a machine without it cannot pass by testing nothing.
const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (apt-get install chromium)`);

// An ASan server answers slower; the page's own waits (5 s who_is_here, backoff) come on top.
const WAIT = SANITIZED ? 40000 : 20000;
const ROOT = path.resolve(__dirname, '..', '..');

// One browser per test file, launched before its first test and closed after its last.
let browser;
function useBrowser() {
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    if (browser) await browser.close();
  });
}

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

module.exports = {
  ROOT, WAIT, WS_FAILED, agent, clean, joinedAs, members, messageBox, origin, person, relay, sees, sendButton, shown,
  type, useBrowser, waitShown,
};
