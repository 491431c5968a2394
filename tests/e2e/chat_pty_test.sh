#!/usr/bin/env bash
# r1 chat driven through a pseudo-terminal (python3's pty module, no tmux/expect needed) on a
# small random model with the real DeepSeek tokenizer: banner and prompt, a reply, /help,
# /save (the conversation as JSON), /system, /reset, unknown commands, multi-line input
# (a line ending in \ and a """ block), /exit; Ctrl-C during a long reply stops it with
# "[stopped]" and keeps the chat alive, Ctrl-D leaves with status 0; Ctrl-C at an idle prompt
# does not leave. Every wait has a timeout (<= 30 s), so a hang fails instead of blocking.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

M="$TMP/nano"
rc=0
"$R1" init --preset v3-nano --out "$M" --tokenizer "$GOLDEN/tokenizer/deepseek_v3" --seed 1 \
  >"$TMP/init.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ ! -f "$M/tokenizer.json" ]; then
  fail "r1 init --preset v3-nano --tokenizer ... exited $rc: $(tail -c 400 "$TMP/init.out")"
  finish
fi
ok "r1 init --preset v3-nano with the DeepSeek tokenizer"

rc=0
"$PY" - "$R1" "$M" "$TMP" <<'EOPY' || rc=$?
import json, os, pty, re, select, signal, sys, time

R1, M, TMP = sys.argv[1:4]
WAIT = 20          # seconds, the most any single wait takes
fails = 0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
# The input prompt ("> ", bold on a terminal) and the continuation prompt (". "), each at the
# start of a line and at the very end of the output (the chat is waiting for input).
PROMPT = re.compile(rb"(?:^|\n)(?:\x1b\[[0-9;]*m)*>(?:\x1b\[[0-9;]*m)* \Z")
CONT = re.compile(rb"(?:^|\n)\. \Z")


def check(cond, msg, got=None):
    global fails
    if cond:
        print("ok: " + msg)
    else:
        fails += 1
        extra = "" if got is None else "; got %r" % ((got[-600:] if isinstance(got, (bytes, str)) else got),)
        print("FAIL: " + msg + extra, file=sys.stderr)
    return cond


def clean(b):
    return ANSI.sub(b"", b).replace(b"\r\n", b"\n").decode("utf-8", "replace")


class Chat:
    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: the chat on the pty's slave side
            try:
                os.execv(R1, [R1, "chat", "-m", M, *args])
            finally:
                os._exit(127)
        self.buf = b""
        self.mark = 0      # start of the output not yet consumed by expect()
        self.status = None
        self.stuck = False  # a wait timed out: later waits give up at once (a hang costs one WAIT)

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            d = os.read(self.fd, 65536)
        except OSError:    # EIO: the child closed the terminal (exited)
            d = b""
        if not d:
            return False
        self.buf += d
        return True

    def expect(self, pattern, timeout=WAIT):
        """Wait until `pattern` (a compiled bytes regex) matches the unconsumed output; return
        the output up to the end of the match (and consume it), or None on timeout / exit."""
        end = time.time() + (0.5 if self.stuck else timeout)
        while True:
            m = pattern.search(self.buf, self.mark)
            if m:
                out = self.buf[self.mark:m.end()]
                self.mark = m.end()
                return out
            left = end - time.time()
            if left <= 0 or not self._read(min(left, 0.2)):
                if not self.alive():
                    m = pattern.search(self.buf, self.mark)
                    if m:
                        out = self.buf[self.mark:m.end()]
                        self.mark = m.end()
                        return out
                if left <= 0 or not self.alive():
                    self.stuck = self.stuck or left <= 0
                    return None

    def prompt(self, timeout=WAIT):
        return self.expect(PROMPT, timeout)

    def pending(self):
        return self.buf[self.mark:]

    def send(self, data):
        os.write(self.fd, data)

    def alive(self):
        if self.status is not None:
            return False
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.status = st
        return False

    def wait_exit(self, timeout=WAIT):
        """Exit status, or None if still running after timeout."""
        end = time.time() + timeout
        while time.time() < end:
            if not self.alive():
                return os.waitstatus_to_exitcode(self.status)
            self._read(0.1)
        return None

    def kill(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
        try:
            os.close(self.fd)
        except OSError:
            pass


def reply_of(out):
    """The reply text in the output of one turn: after the echoed input line, before the prompt."""
    s = clean(out)
    s = s.split("\n", 1)[1] if "\n" in s else ""
    s = re.sub(r"(?:^|\n)> \Z", "", s)
    return s


def saved(path):
    try:
        return json.load(open(path, encoding="utf-8")).get("messages")
    except Exception as e:
        return "unreadable: %s" % e


def say(chat, line, what):
    """Send a message line, wait for the reply and the prompt back; return the reply text."""
    chat.send(line)
    out = chat.prompt()
    if not check(out is not None, "%s: a reply and the prompt come back" % what, chat.pending()):
        return None
    r = reply_of(out)
    check(r.strip() != "", "%s: a reply was printed (%r)" % (what, r[:80]), out)
    return r


def command(chat, line, want, what):
    chat.send(line)
    out = chat.prompt()
    text = clean(out) if out is not None else None
    check(text is not None and re.search(want, text) is not None,
          "%s: prints %r and the prompt comes back" % (what, want), text if text is not None else chat.pending())
    return text


chats = []
try:
    # ---- session 1: -n 8, greedy ------------------------------------------------------
    c = Chat("-n", "8", "--temperature", "0")
    chats.append(c)
    out = c.prompt()
    if check(out is not None and b"r1 chat" in out, "banner and prompt", out if out is not None else c.pending()):
        r1 = say(c, b"hello\n", "'hello'")

        f1 = os.path.join(TMP, "save1.json")
        command(c, ("/save %s\n" % f1).encode(), r"saved 2 messages", "/save after one turn")
        msgs = saved(f1)
        check(isinstance(msgs, list) and [m.get("role") for m in msgs] == ["user", "assistant"]
              and msgs[0].get("content") == "hello",
              "/save wrote [user 'hello', assistant]", msgs)
        if isinstance(msgs, list) and len(msgs) == 2 and r1 is not None:
            check(msgs[1].get("content", "").strip() == r1.strip() != "",
                  "saved assistant message == the printed reply", (msgs[1].get("content"), r1))

        command(c, b"/help\n", r"/reset[\s\S]*/system[\s\S]*/save[\s\S]*/exit", "/help")
        command(c, b"/system Be brief.\n", r"system message set", "/system Be brief.")
        f2 = os.path.join(TMP, "save2.json")
        command(c, ("/save %s\n" % f2).encode(), r"saved 1 messages?", "/save after /system")
        msgs = saved(f2)
        check(msgs == [{"role": "system", "content": "Be brief."}],
              "after /system: only the system message is saved (conversation cleared)", msgs)

        say(c, b"hi\n", "'hi' with the system message")
        command(c, b"/reset\n", r"conversation cleared", "/reset")
        f3 = os.path.join(TMP, "save3.json")
        command(c, ("/save %s\n" % f3).encode(), r"saved", "/save after /reset")
        msgs = saved(f3)
        check(isinstance(msgs, list) and not any(m.get("role") in ("user", "assistant") for m in msgs),
              "after /reset: no user/assistant messages left", msgs)

        command(c, b"/nonsense\n", r"unknown command", "unknown /command")

        # A line ending in \ continues on the next line.
        c.send(b"line one \\\n")
        out = c.expect(CONT)
        check(out is not None, "a line ending in \\ gives the continuation prompt '. '", c.pending())
        say(c, b"line two\n", "two-line message (\\ continuation)")
        # A """ block.
        c.send(b'"""\n')
        out = c.expect(CONT)
        check(out is not None, '""" opens a block (continuation prompt)', c.pending())
        c.send(b"A\n")
        check(c.expect(CONT) is not None, "block line 'A' gives the continuation prompt", c.pending())
        c.send(b"B\n")
        check(c.expect(CONT) is not None, "block line 'B' gives the continuation prompt", c.pending())
        c.send(b'"""\n')
        out = c.prompt()
        if check(out is not None, '""" closes the block: a reply and the prompt come back', c.pending()):
            check(reply_of(out).strip() != "", '"""-block message: a reply was printed', out)
        f4 = os.path.join(TMP, "save4.json")
        command(c, ("/save %s\n" % f4).encode(), r"saved", "/save after the multi-line messages")
        msgs = saved(f4)
        users = [m.get("content") for m in msgs if m.get("role") == "user"] if isinstance(msgs, list) else []
        check(len(users) == 2 and re.fullmatch(r"line one ?\nline two", users[0] or "") is not None,
              "the \\-continued message is 'line one\\nline two' (backslash removed)", users)
        check(len(users) == 2 and (users[1] or "").rstrip("\n") == "A\nB",
              "the \"\"\"-block message is 'A\\nB'", users)

        c.send(b"/exit\n")
        st = c.wait_exit()
        check(st == 0, "/exit leaves with status 0", st)

    # ---- session 2: a long reply, Ctrl-C, then Ctrl-D ------------------------------------
    c = Chat("-n", "100000", "--temperature", "0")
    chats.append(c)
    if check(c.prompt() is not None, "session 2 (-n 100000): banner and prompt", c.pending()):
        c.send(b"hello\n")
        # Wait for the echo and some reply text, then press Ctrl-C.
        out = c.expect(re.compile(rb"hello\r?\n[\s\S]{40,}"))
        check(out is not None, "long reply streams", c.pending())
        c.send(b"\x03")
        out = c.expect(re.compile(rb"\[stopped\]"))
        check(out is not None, "Ctrl-C during the reply prints [stopped]", c.pending())
        out = c.prompt()
        check(out is not None, "the prompt comes back after [stopped]", c.pending())
        time.sleep(0.3)
        check(c.alive(), "the chat is still running after Ctrl-C", c.status)
        f5 = os.path.join(TMP, "save5.json")
        command(c, ("/save %s\n" % f5).encode(), r"saved 2 messages", "/save after the stopped reply")
        msgs = saved(f5)
        check(isinstance(msgs, list) and len(msgs) == 2 and msgs[1].get("role") == "assistant"
              and (msgs[1].get("content") or "").strip() != "",
              "the stopped reply is kept in the conversation", msgs)
        c.send(b"\x04")
        st = c.wait_exit()
        check(st == 0, "Ctrl-D at the prompt leaves with status 0", st)

    # ---- session 3: Ctrl-C at an idle prompt does not leave ------------------------------
    c = Chat("-n", "8", "--temperature", "0")
    chats.append(c)
    if check(c.prompt() is not None, "session 3: banner and prompt", c.pending()):
        c.send(b"\x03")
        out = c.prompt(timeout=10)
        time.sleep(0.3)
        check(out is not None and c.alive(),
              "Ctrl-C at an idle prompt: the chat stays (a hint and the prompt come back)",
              (c.pending() if out is None else out, "exit status %s" % (
                  None if c.alive() else os.waitstatus_to_exitcode(c.status))))
        if c.alive():
            c.send(b"/exit\n")
            st = c.wait_exit()
            check(st == 0, "/exit after the idle Ctrl-C leaves with status 0", st)
finally:
    for c in chats:
        c.kill()
sys.exit(1 if fails else 0)
EOPY
[ "$rc" -eq 0 ] || fail "chat checks failed (see above)"
finish
