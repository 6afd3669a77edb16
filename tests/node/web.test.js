// SPDX-License-Identifier: MIT
// The page for people (web/) in Debian's chromium against the real server: people with an agent, the deep link and keyboard, text-only bodies, sending, phone width.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { eventually, session, sleep, startServer } = require('./harness');
const {
  ROOT, WAIT, agent, clean, joinedAs, members, messageBox, origin, person, sees, sendButton, shown, type, useBrowser, waitShown,
} = require('./web_page');

useBrowser();

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

test('a deep link opens the room joined under the nickname; an invite goes along; the keyboard alone joins', async (t) => {
  const server = await startServer(t);
  const page = await person(t, origin(server), '?room=x&nickname=Alice');
  await joinedAs(page, 'x', 'Alice');
  await page.locator('#tabs').getByRole('button', { name: 'x' }).waitFor();
  const peer = await session(server);
  await peer.join('x', 'peer');
  assert.deepEqual((await peer.ok('tool.who_is_here', { room: 'x' })).nicknames, ['Alice', 'peer']);

  // No nickname: the server assigns one. The invite goes along to join_room, which needs none for a public room.
  await peer.join('y', 'host');
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
