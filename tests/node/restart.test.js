// SPDX-License-Identifier: MIT
// What the database keeps: rooms and their seqs survive a restart, and seq never goes back.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { session, startServer, stopServer, tempDir } = require('./harness');

// The second run ends with SIGKILL: seqs are reserved in blocks before use, so even a
// crash cannot hand out a seq twice (a gap is allowed, a repeat is not).
test('rooms and seqs survive a restart on the same database, even after SIGKILL; seq keeps increasing', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'parley.db');
  let last = {};
  for (let run = 0; run < 3; run++) {
    const server = await startServer(t, { dir, db });
    const a = await session(server);
    const rooms = await a.ok('tool.list_rooms');
    const names = rooms.available.map((r) => r.name).sort();
    assert.deepEqual(names, run === 0 ? [] : ['alpha', 'beta']);
    assert.ok(rooms.available.every((r) => r.membersCount === 0), 'members do not survive a restart');
    for (const room of ['alpha', 'beta']) {
      await a.join(room, 'a');
      const seqs = [];
      for (let i = 0; i < 3; i++) seqs.push((await a.sendMessage(room, `run ${run} #${i}`)).seq);
      if (last[room] !== undefined) assert.ok(seqs[0] > last[room], `${room}: ${seqs[0]} after ${last[room]}`);
      assert.deepEqual(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
      last[room] = seqs[2];
    }
    if (run === 1) {
      server.proc.kill('SIGKILL');
      assert.equal((await server.exit).signal, 'SIGKILL');
      continue;
    }
    await a.close();
    const exit = await stopServer(server);
    assert.deepEqual(exit, { code: 0, signal: null });
  }
});
