#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""parley-tools as a user runs it: version, help, the token commands, and start-up refusals.

Usage: cli_tests.py PATH/TO/parley-tools [unittest args...]
"""
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BINARY = None
TIMEOUT = 60  # seconds; a hang fails the test instead of blocking ctest

SERVER_FLAGS = {
    "--bind": ("PARLEY_BIND", "127.0.0.1"),
    "--port": ("PARLEY_PORT", "7539"),
    "--db": ("PARLEY_DB_FILE", None),
    "--log-level": ("PARLEY_LOG_LEVEL", "info"),
    "--session-grace": ("PARLEY_SESSION_GRACE", "60"),
    "--tls-cert": ("PARLEY_TLS_CERT", None),
    "--tls-key": ("PARLEY_TLS_KEY", None),
    "--max-connections": ("PARLEY_MAX_CONNECTIONS", "10000"),
    "--handshake-timeout": ("PARLEY_HANDSHAKE_TIMEOUT", "10"),
    "--ping-interval": ("PARLEY_PING_INTERVAL", "30"),
    "--pong-timeout": ("PARLEY_PONG_TIMEOUT", "60"),
    "--max-queue-bytes": ("PARLEY_MAX_QUEUE_BYTES", "1048576"),
    "--max-message-bytes": ("PARLEY_MAX_MESSAGE_BYTES", "65536"),
    "--rate-capacity": ("PARLEY_RATE_CAPACITY", "20"),
    "--rate-per-second": ("PARLEY_RATE_PER_SECOND", "10"),
    "--replay-capacity": ("PARLEY_REPLAY_CAPACITY", "64"),
    "--max-rooms": ("PARLEY_MAX_ROOMS", "10000"),
    "--room-rate-capacity": ("PARLEY_ROOM_RATE_CAPACITY", "20"),
    "--room-rate-per-minute": ("PARLEY_ROOM_RATE_PER_MINUTE", "10"),
    "--room-ttl": ("PARLEY_ROOM_TTL", "86400"),
    "--threads": ("PARLEY_THREADS", str(os.cpu_count())),
}

TOKEN_RE = re.compile(r"parley_tok_[A-Za-z0-9_-]{43}")


class cli_test(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="parley-cli-test-")
        self.dir = self._dir.name
        self.db = os.path.join(self.dir, "parley.db")
        # Nothing from the caller's environment may leak in, and nothing may touch a real home.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        self.env["HOME"] = self.dir
        self.env["XDG_DATA_HOME"] = os.path.join(self.dir, "xdg")

    def tearDown(self):
        self._dir.cleanup()

    def run_tool(self, *args, env=None):
        return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=TIMEOUT,
                              env={**self.env, **(env or {})})

    def token(self, *args, **kw):
        return self.run_tool("token", *args, **kw)


class version_and_help(cli_test):
    def test_version_shape(self):
        # The git revision is there when built from a git checkout, and left out (never
        # "unknown") when built from a tarball; version_agreement checks the version itself.
        r = self.run_tool("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\Aparley-tools \d+\.\d+\.\d+( \([0-9a-f]{4,40}\))?\n\Z")
        self.assertNotIn("unknown", r.stdout)

    def test_top_level_help_lists_the_subcommands(self):
        r = self.run_tool("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for sub in ("server", "mcp", "token", "room"):
            self.assertIn(sub, r.stdout)

    def test_server_help_documents_every_flag_with_its_default_and_variable(self):
        r = self.run_tool("server", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag, (env, default) in SERVER_FLAGS.items():
            with self.subTest(flag=flag):
                line = next((l for l in r.stdout.splitlines() if l.strip().startswith(flag + " ")), None)
                self.assertIsNotNone(line, f"{flag} missing from help")
                self.assertIn(f"(Env:{env})", line)
                if default is not None:
                    self.assertIn(f"={default} ", line)

    def test_mcp_help(self):
        r = self.run_tool("mcp", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in ("--server", "PARLEY_SERVER", "ws://127.0.0.1:7539", "--token-file", "--ca-file", "--log-level",
                     "PARLEY_TOKEN"):
            self.assertIn(text, r.stdout)
        self.assertNotIn("--token ", r.stdout)  # a token on the command line would show in ps

    def test_no_subcommand_is_a_usage_error(self):
        self.assertEqual(self.run_tool().returncode, 2)


class tokens(cli_test):
    def test_issue_list_revoke_round_trip(self):
        issued = self.token("issue", "--label", "ci-bot", "--db", self.db)
        self.assertEqual(issued.returncode, 0, issued.stderr)
        self.assertRegex(issued.stdout, r"\A" + TOKEN_RE.pattern + r"\n\Z")
        self.assertIn("cannot be shown again", issued.stderr)
        token = issued.stdout.strip()
        self.assertNotIn(token, issued.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.db).st_mode), 0o600)

        listed = self.token("list", "--db", self.db)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("ci-bot", listed.stdout)
        self.assertIn("never", listed.stdout)  # not used yet
        for out in (listed.stdout, listed.stderr):
            self.assertNotIn(token, out)
            self.assertNotIn("parley_tok_", out)

        revoked = self.token("revoke", "--label", "ci-bot", "--db", self.db)
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        row = next(l for l in self.token("list", "--db", self.db).stdout.splitlines() if l.startswith("ci-bot"))
        self.assertRegex(row, r"\d{4}-\d\d-\d\dT[\d:.]+Z\s*$")  # the REVOKED column has a time

    def test_db_from_the_environment(self):
        env = {"PARLEY_DB_FILE": self.db}
        self.assertEqual(self.token("issue", "--label", "a", env=env).returncode, 0)
        self.assertIn("a ", self.token("list", env=env).stdout)
        self.assertTrue(os.path.exists(self.db))

    def test_default_db_is_private_under_xdg_data_home(self):
        self.assertEqual(self.token("issue", "--label", "a").returncode, 0)
        data = os.path.join(self.env["XDG_DATA_HOME"], "parley")
        self.assertEqual(stat.S_IMODE(os.stat(data).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(data, "parley.db")).st_mode), 0o600)

    def test_duplicate_label_is_a_usage_error(self):
        self.assertEqual(self.token("issue", "--label", "ci-bot", "--db", self.db).returncode, 0)
        again = self.token("issue", "--label", "ci-bot", "--db", self.db)
        self.assertEqual(again.returncode, 2)
        self.assertEqual(again.stdout, "")
        self.assertIn("already exists", again.stderr)

    def test_bad_labels_and_unknown_revokes(self):
        self.assertEqual(self.token("issue", "--label", "two words", "--db", self.db).returncode, 2)
        self.assertEqual(self.token("issue", "--db", self.db).returncode, 2)  # --label is required
        r = self.token("revoke", "--label", "nobody", "--db", self.db)
        self.assertEqual(r.returncode, 2)
        self.assertIn("nobody", r.stderr)

    def test_empty_list_says_how_to_issue(self):
        r = self.token("list", "--db", self.db)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        self.assertIn("token issue", r.stderr)


class rooms(cli_test):
    def room(self, *args):
        return self.run_tool("room", *args)

    def test_an_empty_database_lists_no_rooms(self):
        r = self.room("list", "--db", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("No rooms", r.stderr)

    def test_deleting_an_unknown_or_misspelt_room_is_a_usage_error(self):
        r = self.room("delete", "nowhere", "--db", self.db)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no room nowhere", r.stderr)
        self.assertEqual(self.room("delete", "Not-A-Slug", "--db", self.db).returncode, 2)
        self.assertEqual(self.room("delete", "--db", self.db).returncode, 2)  # the name is required

    def test_delete_help_says_to_stop_the_server(self):
        r = self.room("delete", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Stop the server first", r.stdout)


class server_start_up(cli_test):
    HINT = "parley-tools token issue --label NAME"

    def server(self, *args, **kw):
        return self.run_tool("server", "--port", "0", "--db", self.db, *args, **kw)

    def test_non_loopback_without_a_token_refuses_with_the_hint(self):
        for bind in ("0.0.0.0", "::", "10.0.0.1"):
            with self.subTest(bind=bind):
                r = self.server("--bind", bind)
                self.assertEqual(r.returncode, 2)
                self.assertIn(self.HINT, r.stderr)

    def test_the_bind_from_the_environment_counts_too(self):
        r = self.server(env={"PARLEY_BIND": "0.0.0.0"})
        self.assertEqual(r.returncode, 2)
        self.assertIn(self.HINT, r.stderr)

    def test_a_revoked_token_is_not_an_active_one(self):
        self.assertEqual(self.token("issue", "--label", "old", "--db", self.db).returncode, 0)
        self.assertEqual(self.token("revoke", "--label", "old", "--db", self.db).returncode, 0)
        r = self.server("--bind", "0.0.0.0")
        self.assertEqual(r.returncode, 2)
        self.assertIn(self.HINT, r.stderr)

    def test_invalid_options_are_usage_errors_and_create_no_database(self):
        cert = os.path.join(self.dir, "cert.pem")
        open(cert, "w").close()
        cases = [
            ("--port", "70000"),
            ("--port", "-1"),
            ("--max-queue-bytes", "-5"),  # CLI11 would wrap it into a huge unsigned
            ("--bind", "not-an-address"),
            ("--log-level", "loud"),
            ("--max-connections", "0"),
            ("--ping-interval", "0"),
            ("--max-rooms", "0"),
            ("--room-rate-per-minute", "0"),
            ("--room-ttl", "-1"),
            ("--threads", "0"),
            ("--threads", "257"),
            ("--tls-cert", cert),
            ("--tls-cert", cert, "--tls-key", os.path.join(self.dir, "missing.pem")),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.server(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertNotEqual(r.stderr, "")
                self.assertFalse(os.path.exists(self.db))


class mcp_start_up(cli_test):
    def test_bad_url_and_missing_token_file_are_usage_errors(self):
        self.assertEqual(self.run_tool("mcp", "--server", "http://127.0.0.1:7539").returncode, 2)
        r = self.run_tool("mcp", "--token-file", os.path.join(self.dir, "missing"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing", r.stderr)

    def test_a_bad_url_says_what_is_wrong_with_it(self):
        cases = {
            "http://127.0.0.1:7539": "must start with ws:// or wss://",
            "ws://[::1:7539": "no closing ']'",
            "ws://127.0.0.1:99999": "from 1 to 65535",
            "ws://user:pw@127.0.0.1": "cannot carry credentials",
        }
        for url, sentence in cases.items():
            with self.subTest(url=url):
                r = self.run_tool("mcp", "--server", url, env={"PARLEY_SERVER": ""})
                self.assertEqual(r.returncode, 2)
                self.assertIn(sentence, r.stderr)
                self.assertEqual(r.stdout, "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class mcp_shutdown(cli_test):
    """A SIGTERM while the host keeps writing: the stdin reader must not outlive the loop it feeds."""

    ROUNDS = int(os.environ.get("PARLEY_STRESS_ROUNDS", "20"))
    SANITIZERS = ("ThreadSanitizer", "AddressSanitizer", "LeakSanitizer", "runtime error:")

    def drain(self, stream, into):
        for chunk in iter(lambda: stream.read1(65536), b""):
            into.append(chunk)

    def one_round(self, url):
        proc = subprocess.Popen([BINARY, "mcp", "--server", url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)
        out, err = [], []
        readers = [threading.Thread(target=self.drain, args=(proc.stdout, out), daemon=True),
                   threading.Thread(target=self.drain, args=(proc.stderr, err), daemon=True)]
        for t in readers:
            t.start()
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        os.write(proc.stdin.fileno(), (json.dumps(init) + "\n").encode())
        deadline = time.monotonic() + TIMEOUT
        while b'"id":1' not in b"".join(out):  # the loop is running
            self.assertLess(time.monotonic(), deadline, "no answer to initialize")
            time.sleep(0.005)

        stop = threading.Event()
        ping = (json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}) + "\n").encode() * 4

        def flood():  # lines before, during and after the signal, until the pipe closes
            while not stop.is_set():
                try:
                    os.write(proc.stdin.fileno(), ping)
                except OSError:
                    return
                time.sleep(0.0005)  # a steady stream the bridge keeps up with, not a backlog

        writer = threading.Thread(target=flood, daemon=True)
        writer.start()
        time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=TIMEOUT)
        finally:
            stop.set()
            proc.kill()
            writer.join()
            for t in readers:
                t.join()
            proc.stdin.close()
            proc.stdout.close()
            proc.stderr.close()
        return code, b"".join(err).decode(errors="replace")

    def test_stdin_lines_after_sigterm_end_in_a_clean_exit(self):
        url = f"ws://127.0.0.1:{free_port()}"  # nothing listens: the bridge is between dials
        for n in range(self.ROUNDS):
            code, stderr = self.one_round(url)
            with self.subTest(round=n):
                self.assertEqual(code, 0, stderr[-4000:])
                for name in self.SANITIZERS:
                    self.assertNotIn(name, stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BINARY = sys.argv.pop(1)
    unittest.main()
