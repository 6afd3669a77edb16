// SPDX-License-Identifier: MIT
// The page in rooms people control: a private room with an invite link, a knock an owner approves, direct messages, a kick.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { eventually, session, sleep, startServer } = require('./harness');
const {
  WAIT, WS_FAILED, clean, joinedAs, members, messageBox, origin, person, relay, sees, shown, type, useBrowser, waitShown,
} = require('./web_page');

useBrowser();

// Creates `room` from the side form with the given visibility.
async function create(page, room, nickname, visibility) {
  await sees(page, '#status', 'connected');
  await page.locator('#join-room').fill(room);
  await page.locator('#join-nickname').fill(nickname);
  await page.getByLabel('A new room is').selectOption(visibility);
  await page.getByRole('button', { name: 'Create' }).click();
  await joinedAs(page, room, nickname);
}

async function listed(page, nicknames) {
  let now = [];
  await eventually(async () => {
    now = (await members(page)).map((m) => m.nickname).sort();
    return JSON.stringify(now) === JSON.stringify([...nicknames].sort());
  }, WAIT, `who is here to list ${nicknames.join(', ')}`).catch((e) => {
    throw new Error(`${e.message}; it lists ${now.join(', ')}`);
  });
}

test('a private room: an invite link lets one in, a knock waits for an owner, direct messages reach one member, a kick closes the tab',
     async (t) => {
  const server = await startServer(t);
  const alice = await person(t, origin(server));
  await create(alice, 'secret', 'Alice', 'private');
  await sees(alice, '#members .role', 'owner');
  assert.deepEqual(await members(alice), [{ nickname: 'Alice', kind: 'person' }]);

  // The owner's Invite makes a link on this origin; a second page opens it and is in.
  await alice.getByRole('button', { name: 'Invite' }).click();
  const link = await eventually(async () => {
    const v = await alice.getByLabel(/^Invite link/).inputValue();
    return v || false;
  }, WAIT, 'the invite link');
  const url = new URL(link);
  assert.equal(url.origin, origin(server));
  assert.equal(url.searchParams.get('room'), 'secret');
  assert.match(url.searchParams.get('invite'), /^[A-Za-z0-9_-]{32}$/);
  await sees(alice, '#invite-status', /Copied|copy it/);
  const bob = await person(t, origin(server), `${url.search}&nickname=Bob`);
  await joinedAs(bob, 'secret', 'Bob');

  // Without an invite the room is private: the page says so and offers to knock.
  const carol = await person(t, origin(server), '?room=secret&nickname=Carol');
  await sees(carol, '#join-error', /private.*RoomPrivateError/);
  await carol.getByLabel(/^Note to its owners/).fill('Carol from the build team');
  await carol.getByRole('button', { name: 'Knock' }).click();
  await sees(carol, '#knock-status', /waiting for an owner/);

  // The owner sees the knock with its note and approves it; the knocker's page opens the room.
  await alice.locator('#knocks').getByText('Carol from the build team').waitFor();
  await alice.getByRole('button', { name: 'Approve Carol' }).click();
  await joinedAs(carol, 'secret', 'Carol');
  assert.equal(await carol.locator('#knock').isVisible(), false);
  await alice.locator('#knocks-box').waitFor({ state: 'hidden' });

  // A direct message from Alice to Carol: only Carol gets it, marked as direct, and the room's seqs show no gap.
  await listed(alice, ['Alice', 'Bob', 'Carol']);
  await alice.getByRole('button', { name: 'Message Carol' }).click();
  await sees(alice, '#dm-to-text', /Carol only/);
  await type(alice, 'just between us, Carol');
  await waitShown(carol, 'just between us, Carol');
  const toCarol = carol.locator('#messages .msg.direct', { hasText: 'just between us, Carol' });
  assert.equal(await toCarol.locator('.dm').textContent(), 'direct, to you');
  assert.equal(await toCarol.locator('.kind').textContent(), 'person');
  await sees(alice, '#messages .msg.direct .dm', 'direct, to Carol');
  await alice.getByRole('button', { name: 'Back to the room' }).click();
  await type(alice, 'hello everyone');
  await waitShown(bob, 'hello everyone');
  await waitShown(carol, 'hello everyone');
  assert.deepEqual((await shown(bob)).map((m) => m.body), ['hello everyone'], 'Bob never sees the direct message');
  assert.deepEqual((await shown(carol)).map((m) => m.body), ['just between us, Carol', 'hello everyone']);

  // Carol answers Alice directly; Bob sees none of it.
  await listed(carol, ['Alice', 'Bob', 'Carol']);
  await carol.getByRole('button', { name: 'Message Alice' }).click();
  await type(carol, 'thanks, Alice');
  await waitShown(alice, 'thanks, Alice');
  assert.equal(await alice.locator('#messages .msg.direct', { hasText: 'thanks, Alice' }).locator('.dm').textContent(), 'direct, to you');
  await sleep(3500);  // longer than the page waits before it reports a hole in the room's seqs
  for (const p of [alice, bob, carol]) assert.equal(await p.locator('#missed').isVisible(), false, 'no gap from direct messages');
  assert.ok(!(await shown(bob)).some((m) => m.body === 'thanks, Alice'));

  // Kick asks first; the kicked page closes the room's tab and says why.
  await alice.getByRole('button', { name: 'Kick Bob' }).click();
  await alice.getByRole('button', { name: 'Yes, kick Bob' }).waitFor();
  if (process.env.WEB11_SHOT) await alice.screenshot({ path: '/tmp/web11_alice.png' });
  assert.equal(await alice.evaluate(() => document.activeElement.textContent), 'Yes, kick Bob', 'focus on the confirmation');
  await alice.keyboard.press('Enter');
  await sees(bob, '#notice-text', 'An owner removed you from secret.');
  await bob.locator('#room').waitFor({ state: 'hidden' });
  assert.equal(await bob.locator('#tabs').getByRole('button', { name: 'secret' }).count(), 0);
  await listed(alice, ['Alice', 'Carol']);
  for (const p of [alice, bob, carol]) clean(p);
});

test('a watcher reads but cannot send until its role changes; a bad invite and a ban are said plainly', async (t) => {
  const server = await startServer(t);
  const host = await session(server, { features: ['directMessages'] });
  await host.ok('tool.create_room', { room: 'stage', visibility: 'private', nickname: 'host' });
  const asWatcher = await host.ok('tool.invite', { room: 'stage', role: 'watcher' });

  // A wrong code is refused in words.
  const mallory = await person(t, origin(server), '?room=stage&invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&nickname=Mallory');
  await sees(mallory, '#join-error', /not valid.*InviteInvalidError/);
  // Creating a room that exists is refused, in words.
  await mallory.locator('#join-room').fill('stage');
  await mallory.getByRole('button', { name: 'Create' }).click();
  await sees(mallory, '#join-error', /already exists.*RoomExistsError/);

  // A watcher's composer is closed, with a note; no Invite, Kick or Ban, but Message is there.
  const bob = await person(t, origin(server), `?room=stage&invite=${asWatcher.code}&nickname=Bob`);
  await joinedAs(bob, 'stage', 'Bob');
  await sees(bob, '#watch-note', /watcher/);
  if (process.env.WEB11_SHOT) await bob.screenshot({ path: '/tmp/web11_bob.png' });
  assert.equal(await messageBox(bob).isDisabled(), true);
  assert.equal(await bob.getByRole('button', { name: 'Send' }).isDisabled(), true);
  await listed(bob, ['host', 'Bob']);
  assert.equal(await bob.getByRole('button', { name: 'Invite' }).isVisible(), false);
  assert.equal(await bob.getByRole('button', { name: 'Kick host' }).count(), 0);
  await bob.getByRole('button', { name: 'Message host' }).waitFor();

  // Made an owner: the change is shown, the composer opens, the owner's controls appear.
  await host.ok('tool.set_role', { room: 'stage', nickname: 'Bob', role: 'owner' });
  await bob.locator('#messages .note', { hasText: 'You are now an owner of this room.' }).waitFor();
  assert.equal(await bob.locator('#watch-note').isVisible(), false);
  assert.equal(await messageBox(bob).isEnabled(), true);
  await bob.getByRole('button', { name: 'Invite' }).waitFor();
  const asMember = await host.ok('tool.invite', { room: 'stage' });
  const eve = await person(t, origin(server), `?room=stage&invite=${asMember.code}&nickname=Eve`,
                           { viewport: { width: 375, height: 700 } });
  await joinedAs(eve, 'stage', 'Eve');
  await listed(eve, ['host', 'Bob', 'Eve']);
  assert.ok(await eve.evaluate(() => document.documentElement.scrollWidth <= 375), 'nothing scrolls sideways at phone width');
  assert.equal(await messageBox(eve).isVisible(), true);
  if (process.env.WEB11_SHOT) await eve.screenshot({ path: '/tmp/web11_eve.png' });

  // Ban asks first (Cancel keeps Eve); the banned page closes the tab, says so, and cannot come back.
  await listed(bob, ['host', 'Bob', 'Eve']);
  await bob.getByRole('button', { name: 'Ban Eve' }).click();
  await bob.getByRole('button', { name: 'Cancel' }).click();
  await bob.getByRole('button', { name: 'Ban Eve' }).click();
  await bob.getByRole('button', { name: 'Yes, ban Eve' }).click();
  await sees(eve, '#notice-text', /banned you from stage/);
  await eve.locator('#room').waitFor({ state: 'hidden' });
  await eve.locator('#join-room').fill('stage');
  await eve.getByRole('button', { name: 'Join', exact: true }).click();
  await sees(eve, '#join-error', /banned.*BannedError/);
  for (const p of [mallory, bob, eve]) clean(p);
});

test('direct messages missed while the connection was down are replayed once on resume, apart from the room\'s seqs', async (t) => {
  const server = await startServer(t);
  const net1 = await relay(t, server);
  const page = await person(t, net1.origin, '?room=lobby&nickname=Alice');
  await joinedAs(page, 'lobby', 'Alice');
  const bob = await session(server, { features: ['directMessages'] });
  await bob.join('lobby', 'bob');
  await bob.sendMessage('lobby', 'direct one', { to: 'Alice' });
  await bob.sendMessage('lobby', 'room one');
  await waitShown(page, 'room one');

  net1.cut();
  await sees(page, '#status', /connection lost|reconnecting/);
  await bob.sendMessage('lobby', 'direct two', { to: 'Alice' });
  await bob.sendMessage('lobby', 'room two');
  net1.restore();
  await waitShown(page, 'direct two');
  await waitShown(page, 'room two');
  await sees(page, '#status', 'connected');
  const bodies = (await shown(page)).map((m) => m.body);
  assert.deepEqual([...bodies].sort(), ['direct one', 'direct two', 'room one', 'room two'], 'each once');
  assert.equal(await page.locator('#messages .msg.direct').count(), 2);
  assert.equal(await page.locator('#missed').isVisible(), false, 'an exact resume, and direct seqs are no gap');
  clean(page, WS_FAILED);
});
