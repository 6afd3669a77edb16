// SPDX-License-Identifier: MIT
// The page keeps at most the last 2000 messages of a room, and says so.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { session, startServer } = require('./harness');
const { clean, joinedAs, origin, person, shown, useBrowser, waitShown } = require('./web_page');

useBrowser();

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
