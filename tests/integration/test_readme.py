#!/usr/bin/env python3
"""test_readme — every example of README.md that talks to the demo runs, as
written, against a demo, and must succeed.

A demo of this build tree is started with scripts/demo (FENBO_VAR in a
temporary directory, FENBO_DEMO_NO_BUILD=1: the binaries under test, not a
rebuild). Then each fenced ```sh block of README.md runs in bash, in a
directory that looks like the repository root (var/ is the demo's, the
rest links to the source tree), with fenboctl on the PATH, `set -euo
pipefail`, and curl failing on any answer that is not 2xx. A block that must
not run here (the two commands themselves, the benchmark, the chaos run,
the fuzzers) is preceded by `<!-- not a doc test: why -->`.

A failing block is printed with its line number and its output."""

import os
import re
import shutil
import subprocess
import tempfile

from harness import SOURCE_DIR, Checks, log, main

SKIP = re.compile(r"<!--\s*not a doc test")


def blocks(readme):
    """(line number, text) of each ```sh block not marked as skipped."""
    out, lines = [], readme.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```sh\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, start = m.group(1), i + 1
        skipped = i > 0 and SKIP.search(lines[i - 1] + (lines[i - 2] if i > 1 else ""))
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if not skipped:
            out.append((start, "\n".join(body)))
        i += 1
    return out


PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def run():
    build = os.path.dirname(os.path.dirname(os.environ["FENBOCTL_BIN"]))
    tmp = tempfile.mkdtemp(prefix="fenbo-readme-")
    os.chmod(tmp, 0o755)
    var = os.path.join(tmp, "var")
    env = dict(os.environ, FENBO_VAR=var, FENBO_BUILD_DIR=build, FENBO_DEMO_NO_BUILD="1")
    env["PATH"] = os.path.dirname(os.environ["FENBOCTL_BIN"]) + ":" + env.get("PATH", "")
    ck = Checks()
    try:
        log("scripts/demo (FENBO_VAR=%s)" % var)
        p = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "demo")], env=env,
                           capture_output=True, timeout=900)
        if p.returncode != 0:
            raise AssertionError("scripts/demo failed (%d):\n%s\n%s" % (
                p.returncode, p.stdout.decode(errors="replace")[-4000:],
                p.stderr.decode(errors="replace")[-4000:]))
        out = p.stdout.decode(errors="replace")
        ck.check("export PATH=" in out, "the demo ends by saying how to put fenboctl on the PATH")
        # A directory shaped like the repository root, with the demo's var/.
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        for name in os.listdir(SOURCE_DIR):
            if name not in ("var", ".git"):
                os.symlink(os.path.join(SOURCE_DIR, name), os.path.join(root, name))
        os.symlink(var, os.path.join(root, "var"))
        with open(os.path.join(SOURCE_DIR, "README.md"), encoding="utf-8") as f:
            examples = blocks(f.read())
        ck.check(len(examples) >= 6, "README.md has its examples: %d" % len(examples))
        for line, text in examples:
            script = PRELUDE + "set -a; . var/demo.env; set +a\n" + text + "\n"
            r = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                               timeout=300)
            output = (r.stdout + r.stderr).decode(errors="replace")
            ok = ck.check(r.returncode == 0, "README.md line %d exits %d:\n%s\n--- output:\n%s"
                          % (line, r.returncode, text, output[-3000:]))
            log("README.md line %d: %s" % (line, "ok" if ok else "FAILED"))
        ck.finish()
    finally:
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "stop")], env=env,
                       capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(run)
