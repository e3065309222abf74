"""harness.py — a throwaway fenbo installation for integration tests.

Cluster() builds, in a fresh directory under /tmp, a private PostgreSQL
(scripts/pg, run as the postgres user on a free port), the migrated and
demo-loaded database `fenbo`, one token per role and department, an INI file
with free ports for everything, and the three daemons as separate processes.
Used as a context manager it always tears all of that down again, and when
the block fails it prints the end of every daemon's log first:

    with Cluster("routing") as c:
        status, body = c.post_order({...})
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions") == 1, 30)

Paths come from the environment (tests/integration/CMakeLists.txt sets them):
FENBO_SOURCE_DIR, FENBO_INTAKE_BIN, FENBO_DISPATCHER_BIN, FENBO_WORKER_BIN,
FENBOCTL_BIN. FENBO_KEEP_TMP=1 keeps the directory for a post-mortem.

Only the standard library: http.client, subprocess, json, threading.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import secrets
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

SOURCE_DIR = os.environ.get(
    "FENBO_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
PG_SCRIPT = os.path.join(SOURCE_DIR, "scripts", "pg")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

# Roles that get a token of their own; departments get one each as well.
ROLES = ("hotline", "miniapp", "open311", "mailbox", "operator", "supervisor", "admin")

# What AddressSanitizer / UBSan / LeakSanitizer print: any of these in a
# daemon's log fails the test even when the daemon otherwise behaved.
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |SUMMARY: UndefinedBehaviorSanitizer"
)


class HarnessError(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held open together while picking,
    so that they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def binary(env_name, name):
    path = os.environ.get(env_name, "")
    if not path or not os.path.exists(path):
        raise HarnessError(
            "%s is not built (%s=%r); build the tree first and run through ctest"
            % (name, env_name, path)
        )
    return path


def load_json(relpath):
    with open(os.path.join(SOURCE_DIR, relpath), encoding="utf-8") as f:
        return json.load(f)


def env_name_of_department(code):
    return "FENBO_TOKEN_DEPT_" + re.sub(r"[^A-Za-z0-9]", "_", code).upper()


class Daemon:
    """One fenbo daemon as a child process; stderr and stdout go to a log file."""

    def __init__(self, cluster, name, path, ini=None):
        """ini: a config file of its own (default: the cluster's)."""
        self.cluster = cluster
        self.name = name
        self.path = path
        self.ini = ini
        self.log_path = os.path.join(cluster.tmp, "log", name + ".log")
        self.proc = None
        self.exits = []  # return codes of earlier runs, in order

    def start(self):
        if self.running():
            return
        logf = open(self.log_path, "ab")
        logf.write(("---- start %s ----\n" % time.strftime("%H:%M:%S")).encode())
        logf.flush()
        self.proc = subprocess.Popen(
            [self.path, "--config", self.ini or self.cluster.ini],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            cwd=self.cluster.tmp,
            env=self.cluster.daemon_env(),
            start_new_session=True,
        )
        logf.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def _reap(self):
        rc = self.proc.returncode
        self.exits.append(rc)
        self.proc = None
        return rc

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout seconds. Returns the exit code
        (None when it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.cluster.problems.append(
                    "%s did not exit within %ds of SIGTERM (killed)" % (self.name, timeout)
                )
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reap()

    def restart(self):
        self.stop()
        self.start()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, name, settings=None, start_daemons=True, timeout=None):
        """settings: {"section": {"key": value}} merged over the test defaults.
        timeout: seconds after which the whole test is interrupted (cleanly),
        below ctest's own TIMEOUT so that cleanup still happens."""
        self.name = name
        self.settings = settings or {}
        self.start_daemons = start_daemons
        self.timeout = timeout or int(os.environ.get("FENBO_TEST_TIMEOUT", "540"))
        self.tmp = None
        self.pg_dir = None
        self.problems = []  # things that fail the test at teardown (sanitizer reports…)
        self.tokens = {}
        self.dept_tokens = {}
        self.daemons = {}
        self.departments = []
        self.started = time.monotonic()

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self):
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(self.timeout)
        try:
            self.setup()
        except BaseException:
            self._teardown(failed=True)
            raise
        return self

    def __exit__(self, etype, evalue, tb):
        signal.alarm(0)
        failed = etype is not None
        if failed:
            # Print the cause before the logs, so that it is read first.
            print("".join(traceback.format_exception(etype, evalue, tb)), flush=True)
            try:
                evalue._fenbo_printed = True
            except AttributeError:
                pass
        self._teardown(failed=failed)
        if not failed and self.problems:
            raise HarnessError("; ".join(self.problems))
        return False

    def _on_signal(self, signum, frame):
        raise HarnessError("interrupted by signal %d" % signum)

    def _on_alarm(self, signum, frame):
        raise HarnessError("test ran longer than %d s" % self.timeout)

    def setup(self):
        self.intake_bin = binary("FENBO_INTAKE_BIN", "fenbo-intake")
        self.dispatcher_bin = binary("FENBO_DISPATCHER_BIN", "fenbo-dispatcher")
        self.worker_bin = binary("FENBO_WORKER_BIN", "fenbo-worker")
        self.fenboctl_bin = binary("FENBOCTL_BIN", "fenboctl")

        self.tmp = tempfile.mkdtemp(prefix="fenbo-%s-" % self.name, dir="/tmp")
        # mkdtemp makes it 0700; postgres must be able to enter it.
        os.chmod(self.tmp, 0o755)
        os.makedirs(os.path.join(self.tmp, "log"))
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir)
        self.maildir = os.path.join(self.tmp, "maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        self.pg_dir = os.path.join(self.tmp, "pg")
        log("cluster %s in %s" % (self.name, self.tmp))

        self._run([PG_SCRIPT, "init", self.pg_dir])
        # psql and pgbench find the superuser's password there (no trust).
        os.environ["PGPASSFILE"] = os.path.join(self.pg_dir, "pgpass")
        self.conninfo = self._run([PG_SCRIPT, "start", self.pg_dir]).strip().splitlines()[-1]
        self.pg_port = int(open(os.path.join(self.pg_dir, "port")).read())
        self.psql_base = [
            os.path.join(PGBIN, "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            os.path.join(self.pg_dir, "run"),
            "-p",
            str(self.pg_port),
            "-U",
            "postgres",
        ]
        self._run(self.psql_base + ["-d", "postgres", "-c", "CREATE DATABASE fenbo"])
        self.fenboctl("db", "migrate")
        self.fenboctl("data", "import", os.path.join(SOURCE_DIR, "config", "demo"))

        self.departments = load_json("config/demo/departments.json")
        # ~30 fenboctl runs; side by side they take a third of the time.
        jobs = [(self.tokens, role, (role,), {"name": "itest-" + role}) for role in ROLES]
        jobs += [(self.dept_tokens, d["code"], ("department",),
                  {"department": d["code"], "name": "itest-" + d["code"]})
                 for d in self.departments]
        with ThreadPoolExecutor(4) as pool:
            made = list(pool.map(lambda j: self.create_token(*j[2], **j[3]), jobs))
        for (where, key, _, _), tok in zip(jobs, made):
            where[key] = tok

        (
            self.intake_port,
            self.worker_port,
            self.bus_petitions_port,
            self.bus_assignments_port,
        ) = free_ports(4)
        # The follow-up codes' key, one for every intake of the cluster.
        self.follow_up_key_file = os.path.join(self.tmp, "follow_up.key")
        with open(self.follow_up_key_file, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(self.follow_up_key_file, 0o600)
        self.ini = os.path.join(self.tmp, "fenbo.ini")
        self.write_ini()

        self.daemons = {
            "intake": Daemon(self, "fenbo-intake", self.intake_bin),
            "dispatcher": Daemon(self, "fenbo-dispatcher", self.dispatcher_bin),
            "worker": Daemon(self, "fenbo-worker", self.worker_bin),
        }
        for name, d in self.daemons.items():
            p = subprocess.run(
                [d.path, "--config", self.ini, "--check-config"],
                capture_output=True,
                env=self.daemon_env(),
                cwd=self.tmp,
                timeout=60,
            )
            if p.returncode != 0:
                raise HarnessError(
                    "%s --check-config failed (exit %d):\n%s%s"
                    % (d.name, p.returncode, p.stdout.decode(errors="replace"),
                       p.stderr.decode(errors="replace"))
                )
        if self.start_daemons:
            self.start_all()

    def _teardown(self, failed):
        signal.alarm(0)
        for d in self.daemons.values():
            try:
                rc = d.stop()
                # A clean SIGTERM exit is part of the contract ("drains and exits cleanly").
                if rc not in (None, 0):
                    self.problems.append("%s exited with %s after SIGTERM" % (d.name, rc))
            except Exception as e:  # keep tearing down whatever happens
                self.problems.append("stopping %s: %s" % (d.name, e))
        for d in self.daemons.values():
            m = SANITIZER_RE.search(d.log_text())
            if m:
                self.problems.append("sanitizer report in %s's log (%s)" % (d.name, m.group(0)))
        if self.pg_dir and os.path.exists(os.path.join(self.pg_dir, "data", "PG_VERSION")):
            subprocess.run([PG_SCRIPT, "stop", self.pg_dir], capture_output=True, timeout=180)
        if failed or self.problems:
            for p in self.problems:
                print("PROBLEM: " + p, flush=True)
            self.print_logs()
        if self.tmp:
            if os.environ.get("FENBO_KEEP_TMP"):
                log("kept %s" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def print_logs(self, lines=120):
        for d in self.daemons.values():
            text = d.log_text().splitlines()
            print("======== %s (%s), last %d of %d lines ========"
                  % (d.name, d.log_path, min(lines, len(text)), len(text)))
            print("\n".join(text[-lines:]), flush=True)
        pglog = os.path.join(self.pg_dir, "log", "postgresql.log") if self.pg_dir else ""
        if pglog and os.path.exists(pglog):
            text = open(pglog, errors="replace").read().splitlines()
            print("======== postgresql (%s), last 40 lines ========" % pglog)
            print("\n".join(text[-40:]), flush=True)

    # ---- configuration ---------------------------------------------------

    def daemon_env(self):
        env = dict(os.environ)
        env["FENBO_PG"] = self.conninfo
        # Sanitizer builds: report everything, keep going where UBSan allows.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        return env

    def write_ini(self, path=None, extra=None):
        """Writes the cluster's INI (or, with path, another one), the test
        defaults overlaid with self.settings and then extra."""
        conf = {
            "general": {
                "instance_id": "7",
                "data_dir": self.data_dir,
                "timezone": "Asia/Shanghai",
                "log_level": "info",
            },
            "db": {"conninfo": self.conninfo},
            "bus": {
                "petitions": "tcp://127.0.0.1:%d" % self.bus_petitions_port,
                "assignments": "tcp://127.0.0.1:%d" % self.bus_assignments_port,
            },
            "intake": {
                "address": "127.0.0.1",
                "port": str(self.intake_port),
                "resend_ms": "200",
                "resend_max_ms": "2000",
                "token_refresh_s": "5",
                "follow_up_key_file": self.follow_up_key_file,
            },
            "dispatcher": {},
            "worker": {"address": "127.0.0.1", "port": str(self.worker_port), "catchup_s": "1"},
        }
        for layer in (self.settings, extra or {}):
            for sec, kv in layer.items():
                conf.setdefault(sec, {}).update({k: str(v) for k, v in kv.items()})
        with open(path or self.ini, "w") as f:
            for sec, kv in conf.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    # ---- processes -------------------------------------------------------

    def _run(self, argv, env=None, input=None, timeout=120):
        p = subprocess.run(argv, capture_output=True, env=env, input=input, timeout=timeout)
        if p.returncode != 0:
            raise HarnessError(
                "%s failed (exit %d):\n%s%s"
                % (" ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"))
            )
        return p.stdout.decode()

    def fenboctl(self, *args, check=True, timeout=120):
        """Runs fenboctl against the cluster; returns its stdout (check=True) or
        the CompletedProcess (check=False)."""
        env = dict(os.environ, FENBO_PG=self.conninfo)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        argv = [self.fenboctl_bin] + [str(a) for a in args]
        if not check:
            return subprocess.run(argv, capture_output=True, env=env, timeout=timeout)
        return self._run(argv, env=env, timeout=timeout)

    def create_token(self, role, department=None, name=None):
        args = ["token", "create", "--role", role]
        if department:
            args += ["--department", department]
        if name:
            args += ["--name", name]
        tok = self.fenboctl(*args).strip()
        if not tok or "\n" in tok or " " in tok:
            raise HarnessError("fenboctl token create printed %r, expected the token alone" % tok)
        return tok

    def add_worker(self, name="fenbo-worker-2", settings=None, start=True):
        """Another fenbo-worker on the same database and bus, with an INI of
        its own: a free HTTP port, plus settings {"section": {"key": value}}.
        Returns (daemon, port); the daemon is in self.daemons, so teardown
        stops it."""
        (port,) = free_ports(1)
        merged = {"worker": {"port": port}}
        for sec, kv in (settings or {}).items():
            merged.setdefault(sec, {}).update(kv)
        ini = os.path.join(self.tmp, name + ".ini")
        self.write_ini(path=ini, extra=merged)
        d = Daemon(self, name, self.worker_bin, ini=ini)
        self.daemons[name] = d
        if start:
            d.start()
            self.wait_until(lambda: self.healthz(port), 60, "%s's /healthz" % name)
        return d, port

    def start_all(self):
        # Dispatcher first so that intake's first sends find it; the order is
        # not required (intake spools while the dispatcher is away).
        self.daemons["dispatcher"].start()
        self.daemons["worker"].start()
        self.daemons["intake"].start()
        self.wait_healthy()

    def wait_healthy(self, timeout=60):
        def ok():
            for d in self.daemons.values():
                if d.proc is not None and d.proc.poll() is not None:
                    raise HarnessError("%s exited with %s during start-up"
                                       % (d.name, d.proc.returncode))
            return (self.healthz(self.intake_port) and
                    (not self.daemons["worker"].running() or self.healthz(self.worker_port)))

        self.wait_until(ok, timeout, "daemons answering /healthz")

    def healthz(self, port):
        try:
            st, _ = self.http("GET", "/healthz", port=port, timeout=2)
            return st == 200
        except OSError:
            return False

    def stop_pg(self):
        """Fast shutdown of PostgreSQL (pg_ctl stop -m fast)."""
        self._run([PG_SCRIPT, "stop", self.pg_dir], timeout=180)

    def start_pg(self):
        out = self._run([PG_SCRIPT, "start", self.pg_dir], timeout=180)
        if out.strip().splitlines()[-1] != self.conninfo:
            raise HarnessError("PostgreSQL came back on another port: " + out)

    # ---- HTTP ------------------------------------------------------------

    def http(self, method, path, body=None, headers=None, port=None, token=None, timeout=30,
             conn=None):
        """One request; returns (status, parsed JSON or raw bytes). body may be
        bytes, str or a JSON-able object. conn: a kept-alive HTTPConnection to
        reuse (the caller owns it)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", port or self.intake_port,
                                              timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            ctype = resp.getheader("Content-Type", "")
        finally:
            if own:
                conn.close()
        return status, decode_body(data, ctype)

    def follow_up_code(self, tracking_no):
        """The follow-up code intake gives the resident of tracking_no
        (lib/fb_followup.c: HMAC-SHA256 under the key file, its first 50 bits
        in a 32-letter alphabet)."""
        with open(self.follow_up_key_file) as f:
            key = bytes.fromhex(f.read().strip())
        mac = hmac.new(key, tracking_no.encode(), hashlib.sha256).digest()
        bits = int.from_bytes(mac[:7], "big") >> 6
        alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
        return "".join(alphabet[(bits >> (5 * (9 - i))) & 31] for i in range(10))

    def post_order(self, order, token=None, conn=None, timeout=30):
        """POST /api/v1/hotline/orders → (status, body)."""
        return self.http("POST", "/api/v1/hotline/orders", body=order,
                         token=self.tokens["hotline"] if token is None else token,
                         conn=conn, timeout=timeout)

    def worker(self, method, path, token, body=None):
        return self.http(method, path, body=body, token=token, port=self.worker_port)

    def metrics(self, port=None):
        """Parsed Prometheus text of /metrics as {name{labels}: value}, or None
        when the daemon has no /metrics."""
        try:
            st, body = self.http("GET", "/metrics", port=port or self.intake_port)
        except OSError:
            return None
        if st != 200 or not isinstance(body, (bytes, str)):
            return None
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(None, 1)
            if len(parts) == 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
        return out

    # ---- SQL -------------------------------------------------------------

    def psql(self, sql, variables=None, db="fenbo"):
        """Runs sql (fed on stdin, so psql interpolates :'name' variables —
        the quoting is psql's, never ours) and returns stdout."""
        argv = self.psql_base + ["-d", db, "-A", "-t"]
        for k, v in (variables or {}).items():
            argv += ["-v", "%s=%s" % (k, v)]
        return self._run(argv, input=sql.encode("utf-8"), timeout=60)

    def sql(self, query, **variables):
        """Rows of a SELECT as a list of dicts (through json_agg, so types survive)."""
        wrapped = "SELECT coalesce(json_agg(t), '[]'::json) FROM (%s) t;" % query.rstrip().rstrip(";")
        return json.loads(self.psql(wrapped, variables))

    def sql_value(self, query, **variables):
        rows = self.sql(query, **variables)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    # ---- waiting ---------------------------------------------------------

    def wait_dispatched(self, n, timeout):
        """Until exactly n petitions are stored with their case."""
        return self.wait_until(lambda: self.sql_value(
            "SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") == n,
            timeout, "%d petitions stored with a case" % n)

    def wait_until(self, predicate, timeout, what="condition", interval=0.2):
        """Calls predicate until it returns a true value (which is returned);
        raises HarnessError naming `what` after timeout seconds."""
        deadline = time.monotonic() + timeout
        last_exc = None
        while True:
            try:
                v = predicate()
                if v:
                    return v
            except HarnessError:
                raise
            except Exception as e:  # e.g. psql while PostgreSQL restarts
                last_exc = e
            if time.monotonic() >= deadline:
                raise HarnessError("timed out after %ss waiting for %s%s"
                                   % (timeout, what, " (last error: %s)" % last_exc
                                      if last_exc else ""))
            time.sleep(interval)


def wait_until(predicate, timeout, what="condition", interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


class CurlForm:
    """Uploads with curl, the way a developer tries an upload by hand: every
    part, and the answer, is a file in a scratch folder of the cluster's."""

    def __init__(self, cluster, folder):
        self.dir = os.path.join(cluster.tmp, folder)
        os.makedirs(self.dir)
        self.n = 0

    def file(self, name, data):
        self.n += 1
        path = os.path.join(self.dir, "%03d-%s" % (self.n, name))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def post(self, url, parts=(), headers=(), method=None, raw_body=None):
        """parts: [(name, bytes, type)] as multipart/form-data; raw_body: bytes
        sent as they are instead. Returns (status, parsed JSON or raw bytes)."""
        out = self.file("answer", b"")
        argv = ["curl", "-sS", "--max-time", "60", "-o", out, "-w", "%{http_code}"]
        if method:
            argv += ["-X", method]
        for h in headers:
            argv += ["-H", h]
        if raw_body is not None:
            argv += ["--data-binary", "@" + self.file("body", raw_body)]
        for name, data, ctype in parts:
            argv += ["-F", "%s=@%s;type=%s" % (name, self.file(name, data), ctype)]
        argv.append(url)
        p = subprocess.run(argv, capture_output=True, timeout=90)
        if p.returncode != 0:
            raise AssertionError("curl failed (%d): %s" % (p.returncode, p.stderr.decode()))
        status = int(p.stdout.decode().strip() or 0)
        with open(out, "rb") as f:
            body = f.read()
        try:
            return status, json.loads(body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError included
            return status, body


def decode_body(data, ctype=""):
    """JSON when it parses, else the raw bytes."""
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return data


class Checks:
    """Collects failed expectations so that one run reports all of them."""

    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, cond, msg):
        if cond:
            self.passed += 1
        else:
            self.failures.append(msg)
            log("FAIL: " + msg)
        return cond

    def finish(self):
        if self.failures:
            raise AssertionError("%d check(s) failed:\n  - %s"
                                 % (len(self.failures), "\n  - ".join(self.failures)))
        log("all %d checks passed" % self.passed)


def now_rfc3339():
    """The current time in the city's zone (UTC+8), RFC 3339."""
    tz = datetime.timezone(datetime.timedelta(hours=8))
    return datetime.datetime.now(tz).isoformat(timespec="seconds")


def order(order_no, content, **extra):
    """A minimal valid hotline order."""
    o = {
        "order_no": order_no,
        "received_at": now_rfc3339(),
        "caller": {"name": "测试", "phone": "13800001234"},
        "content": content,
    }
    o.update(extra)
    return o


def bus_petition(seq, tracking_no, idem_key, **fields):
    """The frames of a petition message as an intake sends it on the bus
    (DESIGN.md): a hotline petition, with fields replaced or added."""
    p = {"tracking_no": tracking_no, "channel": "hotline", "idem_key": idem_key,
         "received_at": "2026-01-05T10:00:00+08:00", "spooled_at": "2026-01-05T10:00:00+08:00",
         "caller": None, "content": "x", "content_norm": "x", "category": None,
         "address": None, "location": None, "urgency": "normal", "kind": "help",
         "callback": False, "raw": {}}
    p.update(fields)
    return [b"FB1", b"PET", seq.to_bytes(8, "big"), json.dumps(p, ensure_ascii=False).encode()]


def main(fn):
    """Runs fn() as a test script: exit 0 on success, 1 with the traceback on
    any failure."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as e:
        if not getattr(e, "_fenbo_printed", False):
            traceback.print_exc()
        else:
            print("FAILED: %s: %s" % (type(e).__name__, str(e)[:2000]), flush=True)
        log("FAILED after %.1fs" % (time.monotonic() - start))
        sys.exit(1)
    log("PASSED in %.1fs" % (time.monotonic() - start))
    sys.exit(0)


__all__ = ["Cluster", "Checks", "HarnessError", "log", "main", "order", "wait_until",
           "load_json", "free_ports", "threading", "env_name_of_department"]
