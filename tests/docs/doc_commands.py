#!/usr/bin/python3
"""doc_commands.py - the commands shown in README.md and docs/*.md, held to
the real programs, so documentation that drifts fails the suite.

  doc_commands.py check SRC BUILD   every fenced block of README.md and
                                    docs/*.md classified; every command
                                    block marked; every command line of
                                    ztb's own programs run through their
                                    real parsers
  doc_commands.py extract SRC NAME  print the block marked
                                    <!-- ztb-test: NAME --> (for the tests
                                    that run blocks word for word)

A fenced block is a command block when its info string is sh, bash, shell
or console (console: commands are the `$ ` lines, the rest is output), or
when it is untagged or tagged text and a line of it starts like a command
(then it must be tagged so: the check fails). A block of usage forms with placeholders
(`ztbctl keys [--dir DIR] init`) is tagged synopsis: its forms are not
run for real but are checked like commands in running text (below).
Every command block carries, on the line before its fence, one of
  <!-- ztb-test: NAME -->        run for real by a test under tests/ that
                                 names NAME (checked here)
  <!-- not run: REASON -->       not run for real, and why
and fails the check otherwise. Blocks tagged json, c, nginx, http, ... are
not commands.

Whatever the marker, every command line whose program is ztbctl,
ztb-broker, ztb-authz or scripts/*.sh is run through that program's own
argument parser, in private mount, network and PID namespaces over a
throwaway install (cmake --install --prefix /usr on overlays of /etc, /usr,
/var and /run), so a command that writes (`ztbctl keys init`) changes
nothing on this machine and one that connects reaches nothing:
  ztbctl      run as shown; exit status 2 (usage error: unknown command or
              option, bad value) fails (`--follow` and `watch` may also
              wait: a timeout is past the parser)
  ztb-broker  run as shown plus --check-config (which changes nothing);
              2 (configuration error) fails
  ztb-authz   run as shown; 2 fails (it may also start: a timeout is past
              its parser)
  scripts/X   run as shown with ZTB_PARSE_ONLY=1, which the script must
              honour (it parses its arguments and exits); 2 fails
The namespaces and the install into a private /usr need root (CI runs as
root): run by another user the check fails and says so. (A user namespace
is not enough: its root cannot copy up /usr's directories, owned by the
real root.)

Commands in running text (`ztbctl revoke audience AUD [--lift]`) are
checked the same way once their usage notation is filled in: [optional]
parts included, each alternative of a|b taken in turn, placeholders
(NAME, FILE, KID, S, ...) given a sample value of their kind. A span of
command words only (`ztbctl keys`, `ztbctl ca init`) names a command and
is not run: ztbctl's own usage errors do not tell an unknown command from
a missing argument.

docs/quickstart.md shows the commands scripts/quickstart.sh runs: each of
ztb's programs there must be run by the script with the same command
words and options (a line of the script that calls "$bin/PROGRAM" with
its options and its first two words), so the page and the script cannot drift apart.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SHELL_LANGS = {"sh", "bash", "shell", "console"}
OUR_TOOLS = {"ztbctl", "ztb-broker", "ztb-authz"}
# words that start a shell command line, to find commands in untagged blocks
COMMAND_WORDS = OUR_TOOLS | {
    "sudo", "runuser", "systemctl", "journalctl", "useradd", "groupadd", "usermod",
    "install", "chown", "chmod", "chgrp", "mkdir", "cp", "mv", "rm", "ln", "curl",
    "openssl", "redis-cli", "redis-server", "cmake", "git", "make", "printf", "echo",
    "tar", "rsync", "kill", "logger", "systemd-sysusers", "systemd-tmpfiles",
    "systemd-analyze", "apt-get", "export", "for", "cd", "ctest", "promtool"}
MARK_RE = re.compile(r"^\s*<!--\s*(ztb-test:\s*(?P<name>[\w.-]+)|not run:\s*(?P<why>.*\S))\s*-->\s*$")
FENCE_RE = re.compile(r"^(?P<ind>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


class Block:
    def __init__(self, path, line, lang, body, mark_name, mark_why):
        self.path, self.line, self.lang, self.body = path, line, lang, body
        self.mark_name, self.mark_why = mark_name, mark_why

    def where(self):
        return "%s:%d" % (self.path, self.line)


def doc_files(src):
    return [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))


def blocks_of(path, rel):
    """Every fenced block of one markdown file, with the marker above it."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, ind = m.group("fence"), len(m.group("ind"))
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[j]):
            j += 1
        body = [l[ind:] if l[:ind].strip() == "" else l for l in lines[i + 1:j]]
        k = i - 1
        while k >= 0 and lines[k].strip() == "":
            k -= 1
        mk = MARK_RE.match(lines[k]) if k >= 0 else None
        out.append(Block(rel, i + 1, m.group("info").lower(), body,
                         mk.group("name") if mk else None, mk.group("why") if mk else None))
        i = j + 1
    return out


def all_blocks(src):
    res = []
    for p in doc_files(src):
        res += blocks_of(p, os.path.relpath(p, src))
    return res


def looks_like_command(line):
    """A line that starts, at its first column, like a shell command."""
    if line[:1].isspace():
        return False
    s = line.strip()
    if s.startswith("$ "):
        return True
    w = s.split(" ", 1)[0]
    return w in COMMAND_WORDS or re.match(r"^(\./)?(scripts|build/bin)/[\w.-]+$", w) is not None


def open_quote(text):
    """1 if text ends inside a quoted string."""
    try:
        shlex.split(text, comments=True)
    except ValueError as e:
        return "quotation" in str(e)
    return False


def command_lines(block):
    """The shell command lines of a command block (continuations joined,
    also a quoted string that goes on to the next line; comments and
    heredoc bodies dropped, console output skipped)."""
    cmds, cur, heredoc = [], None, None
    console = block.lang == "console" or (block.lang == "" and any(
        l.startswith("$ ") for l in block.body))
    for raw in block.body:
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        line = raw.rstrip()
        if cur is not None:
            cur += ("\n" if open_quote(cur) else " ") + line.strip()
        elif console:
            if not line.startswith("$ "):
                continue
            cur = line[2:]
        else:
            if line.strip() == "" or line.strip().startswith("#"):
                continue
            cur = line
        if cur.endswith("\\"):
            cur = cur[:-1]
            continue
        if open_quote(cur):
            continue
        h = re.search(r"<<-?\s*'?\"?(\w+)", cur)
        if h:
            heredoc = h.group(1)
        cmds.append(cur.strip())
        cur = None
    if cur is not None:
        cmds.append(cur.strip())
    return cmds


SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", "$(", "`"}
REDIRECTS = {">", ">>", "<", ">&", "&>", "<<", ">|", "<&", "<<<", "2>", "2>>"}


def simple_commands(line):
    """Split one shell line into simple commands (argv lists), redirections
    removed."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        toks = list(lex)
    except ValueError as e:
        raise ValueError("cannot split %r: %s" % (line, e))
    out, cur, skip = [], [], False
    for i, t in enumerate(toks):
        if skip:
            skip = False
            continue
        if t in SEPARATORS:
            if cur:
                out.append(cur)
            cur = []
            continue
        if t in REDIRECTS or re.match(r"^\d*[<>]+&?$", t):
            if cur and re.match(r"^\d$", cur[-1]) and t.startswith(">"):
                cur.pop()  # 2>&1 as '2' '>&' '1'
            skip = True
            continue
        cur.append(t)
    if cur:
        out.append(cur)
    return out


def our_argv(argv):
    """The argv of one of ztb's programs in a simple command, with the
    wrappers before it (VAR=x, sudo -u U, runuser -u U --, env, exec, time)
    taken off, or None."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", a) or a in ("env", "exec", "time", "command"):
            i += 1
        elif a == "sudo":
            i += 1
            while i < len(argv) and argv[i].startswith("-"):
                i += 2 if argv[i] in ("-u", "-g") else 1
        elif a == "runuser":
            i += 1
            while i < len(argv) and argv[i].startswith("-"):
                if argv[i] == "--":
                    i += 1
                    break
                i += 2 if argv[i] in ("-u", "-g") else 1
        else:
            break
    if i >= len(argv):
        return None
    prog = argv[i]
    if os.path.basename(prog) in OUR_TOOLS and (prog in OUR_TOOLS or "/" in prog):
        return [os.path.basename(prog)] + argv[i + 1:]
    if re.match(r"^(\./)?scripts/[\w.-]+\.sh$", prog):
        return [prog.lstrip("./") if prog.startswith("./") else prog] + argv[i + 1:]
    return None


def lint(src, blocks):
    """Problems of classification and marking, as strings."""
    problems = []
    tests_text = ""
    for p in glob.glob(os.path.join(src, "tests", "**", "*"), recursive=True):
        if os.path.isfile(p) and not p.endswith("doc_commands.py") and "/corpus/" not in p:
            try:
                tests_text += open(p, encoding="utf-8", errors="replace").read()
            except OSError:
                pass
    names = {}
    for b in blocks:
        is_cmd = b.lang in SHELL_LANGS
        if not is_cmd and b.lang in ("", "text"):
            hit = [l for l in b.body if looks_like_command(l)]
            if hit:
                problems.append("%s: a block with commands (%r) tagged %r: tag it ```sh (commands"
                                " only), ```console ($ prompts) or ```synopsis (usage forms), and mark"
                                " it" % (b.where(), hit[0].strip(), b.lang))
                continue
        if not is_cmd and not b.mark_name:
            continue
        if b.mark_name is None and b.mark_why is None:
            problems.append("%s: a command block with no marker: put <!-- ztb-test: NAME --> (and run it"
                            " in a test) or <!-- not run: REASON --> on the line before the fence"
                            % b.where())
        if b.mark_name:
            if b.mark_name in names:
                problems.append("%s: ztb-test: %s is also the name of %s" % (b.where(), b.mark_name,
                                                                          names[b.mark_name]))
            names[b.mark_name] = b.where()
            if not re.search(r"(?<![\w.-])" + re.escape(b.mark_name) + r"(?![\w.-])", tests_text):
                problems.append("%s: marked ztb-test: %s, but no file under tests/ names it"
                                % (b.where(), b.mark_name))
        if is_cmd:
            for line in command_lines(b):
                try:
                    simple_commands(line)
                except ValueError as e:
                    problems.append("%s: %s" % (b.where(), e))
    return problems


def synopsis_forms(b):
    """(where, form, argv) for the usage forms of a synopsis block (an
    indented line continues the form above it)."""
    forms = []
    for l in b.body:
        if l[:1].isspace() and forms:
            forms[-1] += " " + l.strip()
        elif l.strip():
            forms.append(l.strip())
    out = []
    for f in forms:
        words = f.split()
        if words[0] not in OUR_TOOLS:
            continue
        for argv in fill_usage(words):
            out.append((b.where(), f, argv))
    return out


def checks(blocks):
    """(where, shown line, argv) for every command line of our programs."""
    out = []
    for b in blocks:
        if b.lang == "synopsis":
            out += synopsis_forms(b)
        if b.lang not in SHELL_LANGS:
            continue
        for line in command_lines(b):
            try:
                cmds = simple_commands(line)
            except ValueError:
                continue  # reported by lint
            for argv in cmds:
                a = our_argv(argv)
                if a:
                    out.append((b.where(), line, a))
    return out


# sample values for the placeholders of usage notation, by name
PLACEHOLDERS = {
    "NAME": "billing-bot", "TEXT": "why", "FILE": "f.json", "F": "f.json", "JWKS_FILE": "jwks.json",
    "KID": "Vt42uBllMLu7s00Pc3TRaPa3hl-2AVh21bs3g4t5yQI", "SIGNAL_ID": "sig_Qm9K0z1fR2xW8uYc",
    "GROUP": "finance", "USER": "alice", "AUDIENCE": "payments", "AUD": "payments", "WHO": "siem",
    "TYPE": "baseline_rate", "TEAM": "payments-team", "UNIX_TIME": "1796367630", "SECONDS": "60",
    "S": "60", "N": "10", "A": "billing-bot", "X": "payments:refund", "O": "denied", "E": "token.issued",
    "JTI": "Qm9K0z1fR2xW8uYcQm9K0z", "SEQ:HASH": "5001:" + "9f" * 32, "DIR": "keys", "DOMAIN": "example.org",
    "SERVICE:VERB": "payments:refund", "R": "orders/1", "JSON": "{}", "LEVEL": "high", "0..1": "0.5",
    "URL": "https://broker.example.org", "PATH": "f.json", "WHO_ELSE": "bob",
}


def fill_usage(words):
    """The commands a usage form stands for, placeholders filled in."""
    forms = [[]]
    for w in words:
        w = w.replace("[", "").replace("]", "").replace("\\|", "|")
        if w == "":
            continue
        if w.endswith("...") and w != "...":
            w = w[:-3]  # FILE...: one or more
        alts = w.split("|") if "|" in w and not w.startswith("-") else [w]
        new = []
        for f in forms:
            for a in alts:
                new.append(f + [a])
        forms = new
    out = []
    for f in forms:
        g = []
        for w in f:
            if w in PLACEHOLDERS:
                w = PLACEHOLDERS[w]
            elif w == "ID":
                w = "apr_TEWD7abO4fb2bpGuR-YGoQ" if "approvals" in f else "act_p0Zc2mD9Jx1Q5rWv"
            elif w.startswith("@") and w[1:] in PLACEHOLDERS:
                w = "@" + PLACEHOLDERS[w[1:]]
            g.append(w)
        out.append(g)
    return out


def inline_commands(src):
    """(where, shown span, argv) for the commands of ztb's programs in
    running text, outside fenced blocks and HTML comments."""
    out = []
    for p in doc_files(src):
        rel = os.path.relpath(p, src)
        lines = open(p, encoding="utf-8").read().split("\n")
        fence = None
        for n, line in enumerate(lines):
            m = FENCE_RE.match(line)
            if m and (fence is None or m.group("fence")[0] == fence):
                fence = None if fence else m.group("fence")[0]
                lines[n] = ""
            elif fence:
                lines[n] = ""
        text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), "\n".join(lines), flags=re.S)
        # a span may wrap onto the next line of its paragraph
        for m in re.finditer(r"(?<!`)`((?:ztbctl|ztb-broker|ztb-authz)\s[^`]*)`", text):
            span, n = " ".join(m.group(1).split()), text.count("\n", 0, m.start()) + 1
            if True:
                words = span.split()
                if "--signer-process" in words or "…" in span:
                    continue  # the signer's internal argv; an elided value
                for argv in fill_usage(words):
                    if all(re.match(r"^[a-z][a-z/-]*$", w) for w in argv[1:]):
                        continue  # command words only: a name, not an invocation
                    if argv[0] == "ztbctl" and not any(re.match(r"^[a-z]", w) for w in argv[1:]):
                        continue  # global options only (`ztbctl --socket PATH`): a prefix
                    # "..." as an option's value is a value; elsewhere it elides
                    # arguments, and the span is a form, not a command
                    argv = [("x" if argv[i - 1].startswith("-") else w) if w == "..." else w
                            for i, w in enumerate(argv)]
                    if "..." in argv:
                        continue
                    out.append(("%s:%d" % (rel, n), span, argv))
    return out


def quickstart_sync(src, blocks):
    """Commands of docs/quickstart.md the script does not run, as problems."""
    script = os.path.join(src, "scripts", "quickstart.sh")
    text = re.sub(r"\\\n\s*", " ", open(script, encoding="utf-8").read())
    calls = {}
    for line in text.split("\n"):
        for m in re.finditer(r'\$bin/([\w-]+)"?', line):
            calls.setdefault(m.group(1), []).append(set(re.findall(r"[A-Za-z0-9_.:/=-]+", line)))
    problems = []
    for b in blocks:
        if b.path != os.path.join("docs", "quickstart.md") or b.lang not in SHELL_LANGS:
            continue
        for line in command_lines(b):
            for argv in simple_commands(line):
                a = our_argv(argv)
                if not a or a[0].startswith("scripts/"):
                    continue
                # its options, and its first two words (command, subcommand)
                need = {w for w in a[1:] if re.match(r"^--?[a-z][\w-]*$", w)}
                need |= set([w for w in a[1:] if re.match(r"^[a-z][a-z-]*$", w)][:2])
                if not any(need <= words for words in calls.get(a[0], [])):
                    problems.append("%s: scripts/quickstart.sh runs no %s with %s" % (
                        b.where(), a[0], " ".join(sorted(need))))
    return problems


def run_checks(src, build, items, work):
    """Inside the namespaces: install, then run each command's parser, in
    work (a scratch directory the caller removes). Returns the failures."""
    fails = []
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    # the upper layers on a tmpfs of their own: /tmp may itself be an
    # overlay (a container's root), which cannot be an upper layer
    os.makedirs(os.path.join(work, "ov"))
    subprocess.run(["mount", "-t", "tmpfs", "ztb-doc-ov", os.path.join(work, "ov")], check=True)
    for d in ("/etc", "/usr", "/var", "/run"):
        n = d.strip("/")
        for s in ("upper", "work"):
            os.makedirs(os.path.join(work, "ov", n, s))
        opts = "lowerdir=%s,upperdir=%s/ov/%s/upper,workdir=%s/ov/%s/work" % (d, work, n, work, n)
        subprocess.run(["mount", "-t", "overlay", "ztb-doc-" + n, "-o", opts, d], check=True)
    subprocess.run(["cmake", "--install", build, "--prefix", "/usr"], check=True,
                   stdout=subprocess.DEVNULL)
    top = os.path.join(work, "ov", "top")  # on the tmpfs: gone with the namespace
    os.makedirs(top)
    os.symlink(os.path.join(src, "scripts"), os.path.join(top, "scripts"))
    os.symlink(build, os.path.join(top, "build"))
    # the sample file of the placeholders FILE, F (`--context @FILE` reads it)
    with open(os.path.join(top, "f.json"), "w") as f:
        f.write("{}\n")
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin", ZTB_PARSE_ONLY="1")
    env.pop("ZTB_ADMIN_SOCKET", None)
    for where, line, argv in items:
        prog = argv[0]
        run = list(argv)
        timeout_ok = False
        if prog == "ztb-broker":
            if not any(a in ("--check-config", "--help", "-h", "--version") for a in run):
                run.append("--check-config")
        elif prog == "ztb-authz" or "--follow" in run or "watch" in run:
            timeout_ok = True  # a server, or a command that waits for more: past its parser
        elif prog.startswith("scripts/"):
            path = os.path.join(src, prog)
            if not os.path.isfile(path):
                fails.append("%s: %s: no such script" % (where, prog))
                continue
            if "ZTB_PARSE_ONLY" not in open(path, encoding="utf-8").read():
                fails.append("%s: %s does not honour ZTB_PARSE_ONLY (it would run for real)" % (where, prog))
                continue
            run[0] = os.path.join(top, prog)
        try:
            r = subprocess.run(run, cwd=top, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, errors="replace", timeout=1 if timeout_ok else 5)
            lines = [l for l in r.stderr.splitlines() if l.strip()] or [""]
            said = [l for l in lines if l.startswith(os.path.basename(prog) + ":")]
            rc, err = r.returncode, (said or lines)[0]
        except subprocess.TimeoutExpired:
            if timeout_ok:
                continue
            fails.append("%s: `%s` did not finish in 5 s" % (where, " ".join(shlex.quote(a) for a in argv)))
            continue
        if rc == 2 or rc < 0 or rc == 127:
            fails.append("%s: `%s`: %s refuses it (status %d): %s" % (where, " ".join(shlex.quote(a) for a in argv), prog, rc, err))
    return fails


def in_namespaces(argv):
    """Run this script again with argv and a scratch directory in new
    mount, network and PID namespaces; its status. The directory is
    removed afterwards."""
    if os.geteuid() != 0:
        print("doc_commands: must run as root: the documented commands run in private namespaces over a"
              " throwaway install into /usr that leave this machine unchanged (sudo ctest -R"
              " lint/doc_commands)", file=sys.stderr)
        return 1
    base = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    work = tempfile.mkdtemp(prefix="ztb-doc-commands.")
    try:
        return subprocess.run(base + [sys.executable, os.path.abspath(__file__)] + argv + [work]).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "extract":
        src, name = sys.argv[2], sys.argv[3]
        found = [b for b in all_blocks(src) if b.mark_name == name]
        if len(found) != 1:
            print("doc_commands: %d blocks marked ztb-test: %s" % (len(found), name), file=sys.stderr)
            return 1
        print("\n".join(found[0].body))
        return 0
    if (len(sys.argv) == 4 and sys.argv[1] == "check") or (len(sys.argv) == 5 and sys.argv[1] == "check-inside"):
        src, build = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
        blocks = all_blocks(src)
        items = checks(blocks) + inline_commands(src)
        if sys.argv[1] == "check-inside":
            fails = run_checks(src, build, items, sys.argv[4])
            for f in fails:
                print("doc_commands: " + f, file=sys.stderr)
            return 1 if fails else 0
        problems = lint(src, blocks) + quickstart_sync(src, blocks)
        for p in problems:
            print("doc_commands: " + p, file=sys.stderr)
        rc = in_namespaces(["check-inside", src, build])
        ncmd = sum(1 for b in blocks if b.lang in SHELL_LANGS)
        print("doc_commands: %d blocks, %d command blocks, %d command lines of ztb's programs checked; %s"
              % (len(blocks), ncmd, len(items),
                 "ok" if rc == 0 and not problems else "FAILED"))
        return 1 if problems or rc != 0 else 0
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
