#!/usr/bin/env python3
"""test_mailbox — the mailbox channel end to end: e-mails made by Python's
`email` package (tests/fixtures/mail/gen_mail.py) delivered into the
Maildir as an MTA does (written to tmp/, renamed into new/), read by
fenbo-intake, and checked where they land: PostgreSQL's petitions, the photo
store, the raw-message store, and the Maildir's cur/ and .failed/.

Accepted, each one petition with the decoded Chinese subject and body: GBK
(base64, encoded-word subject folded over lines, 投诉 → kind complaint),
GB18030 quoted-printable, Big5 multipart/alternative (the plain text wins),
UTF-8 HTML only (reduced to text), a JPEG and a PNG attachment (kept as
photos; a text file claiming to be a JPEG is not), an unknown charset and
invalid GBK bytes (flagged charset_lossy), a GBK character split between two
encoded-words, a message without Message-ID (keyed by the SHA-256 of its
bytes). Each moves to cur/ with the Seen flag.

Refused, each moved to .failed/ with mail_failed logged and no petition: a
truncated multipart, random binary bytes, a message without From.

Then: the same Message-ID delivered again and the same bytes without
Message-ID delivered again make no second petition (and the files still move
to cur/, none overwritten, nothing deleted); a message delivered while intake
is down is taken at start; one delivered while the dispatcher is down is
acknowledged (moved to cur/) from the spool and reaches PostgreSQL when the
dispatcher returns.

Standalone: FENBO_SOURCE_DIR=… FENBO_INTAKE_BIN=… FENBO_DISPATCHER_BIN=…
FENBO_WORKER_BIN=… FENBOCTL_BIN=… python3 tests/integration/test_mailbox.py"""

import datetime
import email.utils
import hashlib
import os
import sys
import time

from harness import SOURCE_DIR, Checks, Cluster, log, main

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fixtures", "mail"))
import gen_mail  # noqa: E402  (test mail built with the standard library)

SCAN_S = 30  # long, so that quick pick-ups prove the inotify path


class MailCluster(Cluster):
    """A Cluster whose intake watches its Maildir: the harness makes the
    Maildir (self.maildir) during setup, after settings are fixed, so the
    [mailbox] section is added when the INI is written."""

    def write_ini(self):
        self.settings.setdefault("mailbox", {}).update(
            {"maildir": self.maildir, "scan_s": str(SCAN_S)})
        super().write_ini()


_seq = [0]


def deliver(c, data, name=None):
    """Delivers data as a new message; returns its file name in new/."""
    if name is None:
        _seq[0] += 1
        name = "%d.M%dP%d.itest" % (int(time.time()), _seq[0], os.getpid())
    gen_mail.write_maildir(c.maildir, name, data)
    return name


def listing(c, sub):
    try:
        return sorted(os.listdir(os.path.join(c.maildir, sub)))
    except FileNotFoundError:
        return []


def in_cur(c, name):
    return name + ":2,S" in listing(c, "cur")


def msgid(tag):
    return email.utils.make_msgid(idstring=tag, domain="itest.example.cn")


def bare(mid):
    return mid.strip("<>")


def petition(c, key):
    rows = c.sql("SELECT channel, idem_key, tracking_no, content, caller_name, caller_phone, "
                 "kind, urgency, callback, category, received_at, "
                 "extract(epoch FROM received_at)::float8 AS received_epoch, raw "
                 "FROM petitions WHERE channel = 'mailbox' AND idem_key = :'k'", k=key)
    return rows[0] if rows else None


def mail_count(c):
    return c.sql_value("SELECT count(*) FROM petitions WHERE channel = 'mailbox'")


def run():
    with MailCluster("mailbox") as c:
        ck = Checks()
        intake = c.daemons["intake"]
        c.wait_until(lambda: "event=mailbox_started" in intake.log_text(), 20, "mailbox_started")
        inotify = "watch=inotify" in intake.log_text()
        if not inotify:
            log("NOTE: no inotify here; pick-ups wait for the %d s scan" % SCAN_S)
        wait_s = 10 if inotify else SCAN_S + 10
        for sub in ("new", "cur", "tmp", ".failed"):
            ck.check(os.path.isdir(os.path.join(c.maildir, sub)), "maildir/%s missing" % sub)

        # ---- the good ones ---------------------------------------------------
        two_hours_ago = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=0) - datetime.timedelta(hours=2)
        date_hdr = email.utils.format_datetime(
            two_hours_ago.astimezone(datetime.timezone(datetime.timedelta(hours=8))))
        ids = {k: msgid(k) for k in ("gbk", "gb18030", "big5", "html", "photos", "unknown",
                                      "invalid", "split")}
        good = {
            "gbk": gen_mail.gbk_plain(ids["gbk"], date_hdr),
            "gb18030": gen_mail.gb18030_qp(ids["gb18030"]),
            "big5": gen_mail.big5_alternative(ids["big5"]),
            "html": gen_mail.utf8_html_only(ids["html"]),
            "photos": gen_mail.with_photos(ids["photos"]),
            "unknown": gen_mail.unknown_charset(ids["unknown"]),
            "invalid": gen_mail.invalid_gbk(ids["invalid"]),
            "split": gen_mail.split_encoded_word(ids["split"]),
            "nomid": gen_mail.no_message_id(date_hdr),
        }
        keys = {k: bare(v) for k, v in ids.items()}
        keys["nomid"] = "sha256:" + hashlib.sha256(good["nomid"]).hexdigest()
        bad_mid = msgid("truncated")
        bad = {
            "truncated": gen_mail.truncated(bad_mid),
            "binary": gen_mail.binary_garbage(),
            "nofrom": gen_mail.no_from(msgid("nofrom")),
        }
        t0 = time.monotonic()
        names = {k: deliver(c, v) for k, v in good.items()}
        bad_names = {k: deliver(c, v) for k, v in bad.items()}

        c.wait_until(lambda: all(in_cur(c, n) for n in names.values()), wait_s,
                     "the good messages in cur/")
        log("good messages in cur/ after %.1fs" % (time.monotonic() - t0))
        c.wait_until(lambda: all(n in listing(c, ".failed") for n in bad_names.values()), wait_s,
                     "the bad messages in .failed/")
        ck.check(listing(c, "new") == [], "new/ should be empty, has %s" % listing(c, "new"))
        c.wait_until(lambda: mail_count(c) == len(good), 30, "%d mailbox petitions" % len(good))

        p = {k: petition(c, keys[k]) for k in good}
        for k, row in p.items():
            ck.check(row is not None, "no petition for %s (key %s)" % (k, keys[k]))
        if any(row is None for row in p.values()):
            ck.finish()

        def has(k, *texts):
            for t in texts:
                ck.check(t in p[k]["content"],
                         "%s: content lacks %r: %r" % (k, t, p[k]["content"][:300]))

        # GBK: subject from folded base64 encoded-words, body in base64.
        has("gbk", gen_mail.GBK_SUBJECT, gen_mail.GBK_BODY)
        ck.check(p["gbk"]["content"].startswith(gen_mail.GBK_SUBJECT + "\n\n"),
                 "gbk: content should be subject, blank line, body")
        ck.check(p["gbk"]["kind"] == "complaint", "gbk: 投诉 in the subject → complaint, got %s"
                 % p["gbk"]["kind"])
        ck.check(p["gbk"]["caller_name"] == "张三", "gbk: caller_name %r" % p["gbk"]["caller_name"])
        ck.check(p["gbk"]["caller_phone"] is None, "gbk: caller_phone should be NULL")
        ck.check(p["gbk"]["urgency"] == "normal" and p["gbk"]["callback"] is False
                 and p["gbk"]["category"] is None, "gbk: urgency/callback/category defaults")
        ck.check(abs(p["gbk"]["received_epoch"] - two_hours_ago.timestamp()) < 1,
                 "gbk: received_at %s should be the Date header %s"
                 % (p["gbk"]["received_at"], date_hdr))
        raw = p["gbk"]["raw"]
        ck.check(raw.get("from") == {"name": "张三", "address": "zhangsan@example.cn"},
                 "gbk: raw.from %r" % raw.get("from"))
        ck.check(raw.get("message_id") == keys["gbk"], "gbk: raw.message_id %r"
                 % raw.get("message_id"))
        ck.check(raw.get("charset_lossy") is False, "gbk: charset_lossy should be false")
        # The raw message, byte for byte, in the data directory.
        rm = raw.get("raw_message") or {}
        ck.check(rm.get("sha256") == hashlib.sha256(good["gbk"]).hexdigest(),
                 "gbk: raw_message.sha256 %r" % rm.get("sha256"))
        eml = os.path.join(c.data_dir, rm.get("file", "missing"))
        ck.check(os.path.isfile(eml) and open(eml, "rb").read() == good["gbk"],
                 "gbk: raw message not kept at %s" % eml)
        cur = os.path.join(c.maildir, "cur", names["gbk"] + ":2,S")
        ck.check(open(cur, "rb").read() == good["gbk"],
                 "gbk: the file in cur/ is not the message delivered")
        # Kept once on disk: the data directory's name is a hard link to the
        # Maildir file (both on one filesystem here).
        if os.path.isfile(eml) and os.stat(c.data_dir).st_dev == os.stat(c.maildir).st_dev:
            ck.check(os.stat(eml).st_ino == os.stat(cur).st_ino and os.stat(eml).st_nlink == 2,
                     "gbk: the raw message is stored twice (inodes %d, %d)"
                     % (os.stat(eml).st_ino, os.stat(cur).st_ino))

        has("gb18030", gen_mail.GB18030_SUBJECT, gen_mail.GB18030_BODY)
        ck.check(p["gb18030"]["kind"] == "help", "gb18030: kind %s" % p["gb18030"]["kind"])
        has("big5", gen_mail.BIG5_SUBJECT, gen_mail.BIG5_PLAIN)
        ck.check("HTML" not in p["big5"]["content"], "big5: the HTML alternative won")
        ck.check(p["big5"]["raw"].get("body_format") == "plain", "big5: body_format")
        has("html", gen_mail.HTML_SUBJECT, "井盖缺失", "下水道井盖 缺失&已有三天",
            "晚上<看不清>", "位置：人民路128号", "请尽快处理。")
        for junk in ("<p>", "<li>", "标题不应出现", "样式不应出现", "脚本不应出现", "注释不应出现",
                     "&amp;", "&nbsp;"):
            ck.check(junk not in p["html"]["content"], "html: %r left in the content" % junk)
        ck.check(p["html"]["raw"].get("body_format") == "html", "html: body_format")
        has("split", gen_mail.SPLIT_SUBJECT, gen_mail.SPLIT_BODY)
        has("nomid", gen_mail.NOMID_SUBJECT, gen_mail.NOMID_BODY)
        ck.check(p["nomid"]["raw"].get("message_id") is None, "nomid: raw.message_id not null")

        for k in ("unknown", "invalid"):
            ck.check(p[k]["raw"].get("charset_lossy") is True, "%s: charset_lossy not set" % k)
        for k in ("gbk", "gb18030", "big5", "html", "photos", "split", "nomid"):
            ck.check(p[k]["raw"].get("charset_lossy") is False, "%s: charset_lossy set" % k)
        has("unknown", "电梯故障")
        has("invalid", "路灯不亮", "请维修", "\ufffd")

        # Photos: the JPEG and the PNG stored by content, the forged one not.
        has("photos", gen_mail.PHOTO_SUBJECT, gen_mail.PHOTO_BODY)
        photos = p["photos"]["raw"].get("photos") or []
        want = [(hashlib.sha256(gen_mail.tiny_jpeg()).hexdigest(), "image/jpeg", "jpg",
                 gen_mail.tiny_jpeg()),
                (hashlib.sha256(gen_mail.tiny_png()).hexdigest(), "image/png", "png",
                 gen_mail.tiny_png())]
        ck.check([(x.get("sha256"), x.get("content_type")) for x in photos]
                 == [(w[0], w[1]) for w in want], "photos: raw.photos %r" % photos)
        for sha, _, ext, data in want:
            path = os.path.join(c.data_dir, "photos", sha[:2], "%s.%s" % (sha, ext))
            ck.check(os.path.isfile(path) and open(path, "rb").read() == data,
                     "photos: %s not stored" % path)

        # ---- the bad ones ----------------------------------------------------
        text = intake.log_text()
        for k, n in bad_names.items():
            ck.check("event=mail_failed file=%s reason=" % n in text,
                     "%s: no mail_failed line for %s" % (k, n))
            ck.check(open(os.path.join(c.maildir, ".failed", n), "rb").read() == bad[k],
                     "%s: the file in .failed/ is not what was delivered" % k)
        ck.check("truncated" in next((ln for ln in text.splitlines()
                                      if "file=%s " % bad_names["truncated"] in ln), ""),
                 "truncated: the reason should say so")
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE idem_key = :'k'",
                             k=bare(bad_mid)) == 0, "truncated: a petition was written")

        # ---- idempotency ---------------------------------------------------------
        again = deliver(c, good["gbk"])                        # same Message-ID, new file
        deliver(c, good["nomid"], names["nomid"])  # same bytes, same file name
        c.wait_until(lambda: in_cur(c, again) and in_cur(c, names["nomid"] + ".1"), wait_s,
                     "redelivered messages in cur/")
        ck.check(in_cur(c, names["nomid"]), "the first copy in cur/ was replaced")
        time.sleep(1.5)  # room for a wrong second petition to arrive
        ck.check(mail_count(c) == len(good),
                 "redelivery made new petitions: %d" % mail_count(c))
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE idem_key = :'k'",
                             k=keys["gbk"]) == 1, "gbk: more than one petition")
        ck.check(("file=%s " % again) in intake.log_text() and "status=200" in next(
            (ln for ln in intake.log_text().splitlines() if "file=%s " % again in ln), ""),
            "a redelivered Message-ID should be answered 200")
        other = gen_mail.no_message_id(email.utils.format_datetime(two_hours_ago))
        other_name = deliver(c, other)  # no Message-ID, other bytes: another petition
        c.wait_until(lambda: mail_count(c) == len(good) + 1, 30, "the other hash-keyed mail")
        ck.check(in_cur(c, other_name), "the other hash-keyed mail is not in cur/")

        # ---- delivered while intake is down: taken at start -------------------------
        intake.stop()
        down_mid = msgid("down")
        down = deliver(c, gen_mail.gb18030_qp(down_mid))
        time.sleep(0.5)
        t0 = time.monotonic()
        intake.start()
        c.wait_healthy()
        c.wait_until(lambda: in_cur(c, down), 10, "the mail delivered while intake was down")
        log("taken %.1fs after start" % (time.monotonic() - t0))
        c.wait_until(lambda: petition(c, bare(down_mid)) is not None, 30,
                     "its petition in PostgreSQL")

        # ---- dispatcher down: acknowledged from the spool, stored later ------------
        c.daemons["dispatcher"].stop()
        late_mid = msgid("late")
        late = deliver(c, gen_mail.big5_alternative(late_mid))
        c.wait_until(lambda: in_cur(c, late), wait_s, "cur/ while the dispatcher is down")
        ck.check(petition(c, bare(late_mid)) is None, "stored without a dispatcher?")
        c.daemons["dispatcher"].start()
        c.wait_until(lambda: petition(c, bare(late_mid)) is not None, 60,
                     "the petition after the dispatcher returned")

        # ---- a burst, and intake stopped in the middle of it -----------------------
        burst = {}
        for i in range(120):
            mid = msgid("burst%d" % i)
            burst[bare(mid)] = deliver(c, gen_mail.with_photos(mid) if i % 3 == 0
                                       else gen_mail.gbk_plain(mid))
        time.sleep(0.15)
        rc = intake.stop()
        ck.check(rc == 0, "intake stopped during a burst exited with %s" % rc)
        taken = sum(1 for n in burst.values() if in_cur(c, n))
        log("%d of %d burst messages taken before the stop" % (taken, len(burst)))
        ck.check(all(in_cur(c, n) or n in listing(c, "new") for n in burst.values()),
                 "a burst message is neither in new/ nor in cur/")
        intake.start()
        c.wait_healthy()
        c.wait_until(lambda: all(in_cur(c, n) for n in burst.values()), 60,
                     "the whole burst in cur/")
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE idem_key LIKE '%burst%'") == len(burst),
            60, "one petition per burst message")
        time.sleep(1)
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE idem_key LIKE '%burst%'")
                 == len(burst), "the burst made more petitions than messages")

        # ---- nothing deleted ----------------------------------------------------------
        delivered = len(good) + len(bad) + 5 + len(burst)
        present = len(listing(c, "cur")) + len(listing(c, ".failed")) + len(listing(c, "new"))
        ck.check(present == delivered, "%d messages delivered, %d files in the Maildir"
                 % (delivered, present))
        ck.check(len(listing(c, ".failed")) == len(bad), ".failed/ holds %s"
                 % listing(c, ".failed"))
        ck.finish()


if __name__ == "__main__":
    main(run)
