// SPDX-License-Identifier: MIT
// Shared by the node benchmarks: find ws and parley-tools, start a server, read a process's CPU time and RSS.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// The benches reuse the integration tests' pinned ws rather than a second lockfile.
function loadWs() {
  const candidates = [path.join(__dirname, '..', 'tests', 'node', 'node_modules', 'ws'), 'ws'];
  for (const c of candidates) {
    try {
      return require(c);
    } catch {}
  }
  throw new Error('ws is not installed: run `npm ci --prefix tests/node` from the source root');
}

// --name value pairs; every flag must be one the script knows.
function parseArgs(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in defaults) || i + 1 >= argv.length) {
      console.error(`usage: ${path.basename(process.argv[1])} ${Object.keys(defaults).map((k) => `[--${k} V]`).join(' ')}`);
      process.exit(2);
    }
    out[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return out;
}

function findBinary(given) {
  const candidates = [given, process.env.PARLEY_TOOLS, path.join(__dirname, '..', 'build', 'tools', 'parley-tools')];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  throw new Error('parley-tools not found: pass --binary PATH or set PARLEY_TOOLS');
}

// Starts `parley-tools server --port 0` in a temporary directory; resolves with
// { proc, url, port, stop() } once it prints its listening line (10 s at most).
function startServer(binary, args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir };
  for (const k of Object.keys(env)) if (k.startsWith('PARLEY_')) delete env[k];
  const proc = spawn(binary, ['server', '--port', '0', '--db', path.join(dir, 'bench.db'), '--log-level', 'warn', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const stop = async () => {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('the server did not start within 10 s'));
    }, 10000);
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^listening wss?:\/\/[^\n]*:(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), url: `ws://127.0.0.1:${m[1]}/`, stop });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening`));
    });
  });
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

// user+system CPU seconds of a process, from /proc/<pid>/stat (utime and stime are in clock ticks).
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

// VmRSS of a process in KiB, from /proc/<pid>/status.
function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

module.exports = { cpuSeconds, findBinary, loadWs, parseArgs, rssKiB, startServer };
