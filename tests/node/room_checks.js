// SPDX-License-Identifier: MIT
// Checks the rooms_*.test.js files share: a refusal with its code, the next room.event of a kind, and quiet.
'use strict';

const assert = require('node:assert/strict');

// The tool.err a call must get, with `code`.
async function refused(c, tag, fields, code) {
  const answer = await c.call(tag, fields);
  assert.equal(answer._tag, 'tool.err', `${tag} ${JSON.stringify(fields).slice(0, 200)} → ${JSON.stringify(answer)}`);
  assert.equal(answer.code, code, `${tag} ${JSON.stringify(fields).slice(0, 200)} → ${JSON.stringify(answer)}`);
  return answer;
}

// The next room.event of `kind` in `room`.
function event(c, room, kind, timeoutMs) {
  return c.next((f) => f._tag === 'room.event' && f.room === room && f.kind === kind, timeoutMs, `room.event ${kind} in ${room}`);
}

// After a round trip, nothing else is queued: no stray event or message reached `c`.
async function quiet(c) {
  await c.ok('tool.list_rooms');
  assert.deepEqual(c.frames, [], 'unexpected frames');
}

// [nickname, role] of each member, in join order.
const roles = async (c, room) => (await c.ok('tool.who_is_here', { room })).members.map((m) => [m.nickname, m.role]);

module.exports = { event, quiet, refused, roles };
