// SPDX-License-Identifier: MIT
// Latency from send_message in one parley-tools mcp to the channel notification on another's stdout.
//
// Usage: node bench/mcp_latency.js <path to parley-tools> [messages=1000]
// Needs `npm ci --prefix tests/node` (the MCP SDK). Starts its own server on a free port with
// the rate limit raised, so the measurement is of the path, not of the token bucket.
// Sends are one at a time: each waits for its push before the next, so latencies don't queue.
'use strict';

const path = require('node:path');
const os = require('node:os');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const nodeModules = path.join(__dirname, '..', 'tests', 'node', 'node_modules');
const { Client } = require(path.join(nodeModules, '@modelcontextprotocol/sdk/dist/cjs/client/index.js'));
const { StdioClientTransport } = require(path.join(nodeModules, '@modelcontextprotocol/sdk/dist/cjs/client/stdio.js'));

const binary = process.argv[2];
const count = Number(process.argv[3] || 1000);
if (!binary) {
  console.error('usage: node bench/mcp_latency.js <parley-tools> [messages]');
  process.exit(2);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  const server = spawn(binary, ['server', '--port', '0', '--db', path.join(dir, 'p.db'), '--log-level', 'error',
                                '--rate-capacity', '100000', '--rate-per-second', '100000'],
                       { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(String(d).trim().split(' ')[1])));
  const env = { ...process.env, PARLEY_SERVER: url, HOME: dir };

  async function agent(name) {
    const client = new Client({ name, version: '1' }, { capabilities: {} });
    const transport = new StdioClientTransport({ command: binary, args: ['mcp', '--log-level', 'error'], env, stderr: 'inherit' });
    client.pending = null;
    client.fallbackNotificationHandler = async (n) => {
      if (n.method === 'notifications/claude/channel' && client.pending) client.pending(process.hrtime.bigint());
    };
    await client.connect(transport);
    const joined = await client.callTool({ name: 'join_room', arguments: { room: 'bench', nickname: name } });
    if (joined.isError) throw new Error(JSON.stringify(joined.content));
    return client;
  }

  const sender = await agent('sender');
  const receiver = await agent('receiver');
  const latencies = [];
  for (let i = 0; i < count + 50; i++) {  // the first 50 warm up and are not counted
    const arrived = new Promise((resolve) => { receiver.pending = resolve; });
    const start = process.hrtime.bigint();
    const r = await sender.callTool({ name: 'send_message', arguments: { room: 'bench', body: `message ${i}` } });
    if (r.isError) throw new Error(JSON.stringify(r.content));
    const end = await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error('no push in 5 s')), 5000))]);
    if (i >= 50) latencies.push(Number(end - start) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(`messages ${latencies.length}  p50 ${pick(0.5).toFixed(3)} ms  p90 ${pick(0.9).toFixed(3)} ms  ` +
              `p99 ${pick(0.99).toFixed(3)} ms  max ${latencies[latencies.length - 1].toFixed(3)} ms`);
  await sender.close();
  await receiver.close();
  server.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
