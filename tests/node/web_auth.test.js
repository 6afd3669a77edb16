// SPDX-License-Identifier: MIT
// The page on a public bind: the token form, sign-in by an HttpOnly cookie, sign-out, revocation.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { issueToken, revokeToken, session, startServer, tempDir } = require('./harness');
const { WAIT, WS_FAILED, clean, joinedAs, origin, person, sees, type, useBrowser, waitShown } = require('./web_page');

useBrowser();

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
