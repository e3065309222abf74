#!/usr/bin/env python3
"""test_config_example — config/fenbo.ini.example stays in step with the
settings table (lib/fb_config.c): it names every setting `fenboctl config`
prints, no other, and with the same default values; and every daemon accepts
it with --check-config. Needs no database."""

import configparser
import os
import subprocess

from harness import SOURCE_DIR, Checks, binary, log, main


def parse(text):
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",),
                                   comment_prefixes=(";", "#"), strict=True)
    cp.optionxform = str  # keys are case-sensitive in fenbo
    cp.read_string(text)
    return {(s, k): v.strip() for s in cp.sections() for k, v in cp.items(s)}


def run():
    ck = Checks()
    example_path = os.path.join(SOURCE_DIR, "config", "fenbo.ini.example")
    with open(example_path, encoding="utf-8") as f:
        example = parse(f.read())

    fenboctl = binary("FENBOCTL_BIN", "fenboctl")
    env = {k: v for k, v in os.environ.items() if k != "FENBO_PG"}
    p = subprocess.run([fenboctl, "config"], capture_output=True, env=env, timeout=60)
    ck.check(p.returncode == 0, "fenboctl config failed: %s" % p.stderr.decode(errors="replace"))
    table = parse(p.stdout.decode("utf-8"))
    ck.check(len(table) > 10, "fenboctl config printed only %d settings" % len(table))

    missing = sorted("[%s] %s" % k for k in set(table) - set(example))
    unknown = sorted("[%s] %s" % k for k in set(example) - set(table))
    ck.check(not missing, "config/fenbo.ini.example lacks %s" % missing)
    ck.check(not unknown, "config/fenbo.ini.example has settings fenbo does not know: %s" % unknown)
    for k in sorted(set(table) & set(example)):
        # The secret keys print as "(hidden)" when set; they are empty here.
        ck.check(table[k] == example[k],
                 "[%s] %s: the example says %r, the default is %r" % (k[0], k[1], example[k],
                                                                      table[k]))

    for var, name in (("FENBO_INTAKE_BIN", "fenbo-intake"),
                      ("FENBO_DISPATCHER_BIN", "fenbo-dispatcher"),
                      ("FENBO_WORKER_BIN", "fenbo-worker")):
        p = subprocess.run([binary(var, name), "--config", example_path, "--check-config"],
                           capture_output=True, timeout=60)
        ck.check(p.returncode == 0, "%s --check-config rejects the example (exit %d): %s"
                 % (name, p.returncode, (p.stdout + p.stderr).decode(errors="replace")))
    log("%d settings compared" % len(table))
    ck.finish()


if __name__ == "__main__":
    main(run)
