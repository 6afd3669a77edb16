// SPDX-License-Identifier: MIT
// --threads: connections spread over several I/O threads still see one order per room, every message once, no echo,
// and a resume lands on whichever thread its new connection was given.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { session, startServer } = require('./harness');

const MEMBERS = 7; // more than the threads, so every thread serves several members
const PER_MEMBER = 25;

for (const threads of [1, 3]) {
  test(`--threads ${threads}: every member gets every other member's messages once, in seq order`, async (t) => {
    const server = await startServer(t, { args: ['--threads', String(threads), '--rate-capacity', '1000', '--rate-per-second', '1000'] });
    const members = [];
    for (let i = 0; i < MEMBERS; i++) {
      const c = await session(server);
      await c.join('spread', `m${i}`);
      members.push(c);
    }
    // Everyone sends at once: the sends of different threads interleave at the hub.
    const results = await Promise.all(
      members.map(async (c, i) => {
        const sent = [];
        for (let k = 0; k < PER_MEMBER; k++) sent.push(c.sendMessage('spread', `m${i}-${k}`));
        return Promise.all(sent);
      }),
    );
    const seqs = results.flat().map((r) => r.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: MEMBERS * PER_MEMBER }, (_, k) => k + 1), 'the hub gave each send its own seq');

    for (let i = 0; i < MEMBERS; i++) {
      const got = [];
      for (let k = 0; k < (MEMBERS - 1) * PER_MEMBER; k++) got.push(await members[i].message('spread'));
      assert.ok(got.every((m) => m.fromNickname !== `m${i}`), 'no echo of its own messages');
      const gotSeqs = got.map((m) => m.seq);
      assert.deepEqual(gotSeqs, [...gotSeqs].sort((a, b) => a - b), 'in seq order');
      assert.equal(new Set(gotSeqs).size, gotSeqs.length, 'each once');
      // Each sender's own messages arrive in the order it sent them.
      for (let j = 0; j < MEMBERS; j++) {
        if (j === i) continue;
        const bodies = got.filter((m) => m.fromNickname === `m${j}`).map((m) => m.body);
        assert.deepEqual(bodies, Array.from({ length: PER_MEMBER }, (_, k) => `m${j}-${k}`));
      }
    }
    await members[0].ok('tool.list_rooms');
    assert.deepEqual(members[0].frames, []);

    // A dropped member resumes on a new connection (likely another thread) and gets what it missed.
    const dropped = members[1];
    const lastSeq = seqs[seqs.length - 1];
    for (const c of members) await c.send({ _tag: 'ack', room: 'spread', seq: lastSeq });
    dropped.terminate();
    const missed = await members[2].sendMessage('spread', 'while you were away');
    const back = await session(server, {
      resume: { sessionId: dropped.session.sessionId, reconnectToken: dropped.session.reconnectToken, lastAckedSeqByRoom: { spread: lastSeq } },
    });
    const replayed = await back.message('spread');
    assert.deepEqual([replayed.seq, replayed.body], [missed.seq, 'while you were away']);
    for (const c of [back, ...members.filter((c) => c !== dropped)]) await c.close();
  });
}
