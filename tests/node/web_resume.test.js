// SPDX-License-Identifier: MIT
// The page after its connection drops: an exact resume, and a failed one that starts afresh with a visible notice.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { eventually, session, sleep, startServer } = require('./harness');
const { WAIT, WS_FAILED, clean, joinedAs, person, relay, sees, shown, type, useBrowser, waitShown } = require('./web_page');

useBrowser();

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
