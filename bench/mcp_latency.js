// SPDX-License-Identifier: MIT
// Latency from send_message written to one parley-tools mcp's stdin to the channel notification read from another's stdout.
//
// Usage: node bench/mcp_latency.js [--binary PATH] [--messages 1000] [--warmup 50] [--client raw|sdk] [--timeout 120]
//        node bench/mcp_latency.js PATH [MESSAGES]            (the older form)
// Starts its own server on a free port with the rate limit raised, so the measurement is
// of the path, not of the token bucket, and two bridges, `sender` and `receiver`, both in
// room `bench`. Sends are one at a time: each waits for its answer and its push before
// the next, so latencies don't queue.
//
// What is timed is the bridges, the server and the pipes, not this script. With
// `--client raw` (the default) the host side is a few lines of JSON-RPC: the clock starts
// right before the request is written and stops when the chunk holding the push is read,
// before it is parsed, and the loop allocates little, so node's garbage collector seldom
// runs inside a measurement; the GCs that did are counted and printed. `--client sdk`
// drives both bridges through the MCP SDK's Client instead (zod validation of every
// message, promise chains): a real host's view, whose extra time and pauses are node's.
'use strict';

const path = require('node:path');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const { PerformanceObserver, performance } = require('node:perf_hooks');
const { findBinary, parseArgs, startServer } = require('./bench_support');

const legacy = process.argv[2] && !process.argv[2].startsWith('--');
const opts = legacy
  ? { binary: process.argv[2], messages: Number(process.argv[3] || 1000), warmup: 50, client: 'raw', timeout: 120 }
  : parseArgs({ binary: '', messages: 1000, warmup: 50, client: 'raw', timeout: 120 });
if (opts.client !== 'raw' && opts.client !== 'sdk') {
  console.error('--client is raw or sdk');
  process.exit(2);
}
const binary = findBinary(opts.binary);

// Node's young generation starts at 1 MiB and each read from a pipe allocates, so the
// harness would scavenge every few hundred messages, and a scavenge waits for V8's helper
// threads, which on a loaded box wait for a core: milliseconds that are node's, not the
// bridge's. A young generation of 64 MiB from the start keeps a run of a few thousand
// messages clear of it. The script runs itself again with those flags.
const GC_FLAGS = ['--min-semi-space-size=64', '--max-semi-space-size=64'];
if (!GC_FLAGS.every((f) => process.execArgv.includes(f))) {
  const child = spawn(process.execPath, [...GC_FLAGS, ...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  child.on('exit', (code, signal) => process.exit(signal ? 1 : code));
  return;
}

// ---- host side: bare JSON-RPC lines ----------------------------------------------------

// One bridge as a host would run it, speaking newline-delimited JSON-RPC.
function rawAgent(env, name) {
  const proc = spawn(binary, ['mcp', '--log-level', 'error'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const agent = { proc, nextId: 1, answers: new Map(), onPush: null, onAnswer: null };
  let partial = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    const at = process.hrtime.bigint();  // before any parsing: the bytes are here
    partial += chunk;
    let end;
    while ((end = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, end);
      partial = partial.slice(end + 1);
      // Only what the bench needs is parsed: pushes by their method, answers by their id.
      if (line.includes('"notifications/claude/channel"')) {
        if (agent.onPush) agent.onPush(at);
      } else if (!line.includes('"method"')) {
        const message = JSON.parse(line);
        const resolve = agent.answers.get(message.id);
        if (resolve) {
          agent.answers.delete(message.id);
          resolve({ message, at });
        }
      }
    }
  });
  agent.request = (method, params) =>
    new Promise((resolve) => {
      const id = agent.nextId++;
      agent.answers.set(id, resolve);
      proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  agent.close = () =>
    new Promise((resolve) => {
      proc.on('exit', resolve);
      proc.stdin.end();
    });
  return (async () => {
    await agent.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name, version: '1' },
    });
    proc.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
    const joined = await agent.request('tools/call', { name: 'join_room', arguments: { room: 'bench', nickname: name } });
    if (joined.message.result?.isError || joined.message.error) throw new Error(JSON.stringify(joined.message));
    return agent;
  })();
}

async function rawRun(env, total, record) {
  const sender = await rawAgent(env, 'sender');
  const receiver = await rawAgent(env, 'receiver');
  // The request's text is built before the clock starts; only the write is timed.
  const requests = [];
  for (let i = 0; i < total; i++) {
    requests.push(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1000000 + i,
        method: 'tools/call',
        params: { name: 'send_message', arguments: { room: 'bench', body: `message ${i}` } },
      }) + '\n',
    );
  }
  for (let i = 0; i < total; i++) {
    const pushed = new Promise((resolve) => {
      receiver.onPush = resolve;
    });
    const answered = new Promise((resolve) => sender.answers.set(1000000 + i, resolve));
    const start = process.hrtime.bigint();
    sender.proc.stdin.write(requests[i]);
    const answer = await answered;
    if (answer.message.result?.isError || answer.message.error) throw new Error(JSON.stringify(answer.message));
    const end = await pushed;
    record(i, start, end, answer.at);
  }
  await Promise.all([sender.close(), receiver.close()]);
}

// ---- host side: the MCP SDK's Client -----------------------------------------------------

async function sdkRun(env, total, record) {
  const nodeModules = path.join(__dirname, '..', 'tests', 'node', 'node_modules');
  const { Client } = require(path.join(nodeModules, '@modelcontextprotocol/sdk/dist/cjs/client/index.js'));
  const { StdioClientTransport } = require(path.join(nodeModules, '@modelcontextprotocol/sdk/dist/cjs/client/stdio.js'));
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
  for (let i = 0; i < total; i++) {
    const arrived = new Promise((resolve) => {
      receiver.pending = resolve;
    });
    const start = process.hrtime.bigint();
    const r = await sender.callTool({ name: 'send_message', arguments: { room: 'bench', body: `message ${i}` } });
    const answeredAt = process.hrtime.bigint();
    if (r.isError) throw new Error(JSON.stringify(r.content));
    record(i, start, await arrived, answeredAt);
  }
  await sender.close();
  await receiver.close();
}

// ---- measuring ------------------------------------------------------------------------

function summary(name, values) {
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `${name} p50 ${pick(0.5).toFixed(3)} ms  p90 ${pick(0.9).toFixed(3)} ms  p99 ${pick(0.99).toFixed(3)} ms  max ${sorted[sorted.length - 1].toFixed(3)} ms`;
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`mcp_latency: no result within ${opts.timeout} s`);
    process.exit(1);
  }, opts.timeout * 1000);
  const server = await startServer(binary, ['--rate-capacity', '100000', '--rate-per-second', '100000']);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-home-'));
  const env = { ...process.env, HOME: home, XDG_DATA_HOME: home };
  for (const k of Object.keys(env)) if (k.startsWith('PARLEY_')) delete env[k];
  env.PARLEY_SERVER = server.url;

  const pushes = [];
  const answers = [];
  let measuredFrom = Infinity;  // performance.now() when the first counted message was sent
  let measuredTo = Infinity;
  const gcs = [];
  const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  const record = (i, start, pushedAt, answeredAt) => {
    if (i < opts.warmup) return;
    if (i === opts.warmup) measuredFrom = performance.now() - Number(pushedAt - start) / 1e6;
    pushes.push(Number(pushedAt - start) / 1e6);
    answers.push(Number(answeredAt - start) / 1e6);
    measuredTo = performance.now();
  };
  try {
    const run = opts.client === 'raw' ? rawRun : sdkRun;
    await run(env, opts.messages + opts.warmup, record);
  } finally {
    await server.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
  await new Promise((resolve) => setImmediate(resolve));  // GC entries are delivered asynchronously
  observer.disconnect();
  const gcPauses = gcs.filter((e) => e.startTime >= measuredFrom && e.startTime <= measuredTo).map((e) => e.duration);
  clearTimeout(watchdog);
  console.log(`mcp_latency (${opts.client} client): ${pushes.length} messages after ${opts.warmup} to warm up`);
  console.log(`  ${summary('push      ', pushes)}   (send_message written -> channel notification read)`);
  console.log(`  ${summary('tool call ', answers)}   (send_message written -> its answer read)`);
  const longest = gcPauses.length ? Math.max(...gcPauses).toFixed(3) : '0';
  console.log(`  node GCs while measuring: ${gcPauses.length}, longest ${longest} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
