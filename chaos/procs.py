"""Child processes, logging and cleanup of the chaos harness (chaos/chaos.py).

Every child process is registered when spawned and killed on any way out; every other resource
(a network namespace, an Apache Kafka cluster) registers a cleanup hook that runs after the
children are gone, newest first. Children also get SIGKILL from the kernel when the harness
itself dies (`setpriv --pdeathsig`), so not even a SIGKILLed harness leaves a bridge behind.
Python 3 standard library only.
"""

import shutil
import subprocess
import threading
import time

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print(f"[{now():7.1f}s] {msg}", flush=True)


class HarnessError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Child processes: every one is registered, and every one is killed on the way out.
# --------------------------------------------------------------------------------------------

CHILDREN = []


HOOKS = []
# `setpriv --pdeathsig KILL`: the kernel SIGKILLs the child when the harness dies, even by SIGKILL.
# (The signal follows the thread that forked: every spawn runs on the main thread.)
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def spawn(args, log_path, stdin=subprocess.DEVNULL, stdout=None, env=None, cwd=None):
    # pylint: disable=consider-using-with
    err = open(log_path, "ab")
    p = subprocess.Popen(
        DIE_WITH_PARENT + list(args),
        stdin=stdin,
        stdout=stdout if stdout is not None else err,
        stderr=err,
        env=env,
        cwd=cwd,
        close_fds=True,
    )
    CHILDREN.append(p)
    return p


def on_cleanup(fn):
    """Registers `fn()` to run on the way out, after every child is gone (newest first)."""
    HOOKS.append(fn)


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in CHILDREN:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    while HOOKS:
        fn = HOOKS.pop()
        try:
            fn()
        except Exception as e:  # pylint: disable=broad-except
            log(f"cleanup: {e}")


def on_signal(signum, _frame):
    raise HarnessError(f"interrupted by signal {signum}")


def read_first_line(p, timeout, what):
    """Reads stdout's first line of `p` within `timeout` (a reader thread keeps it bounded)."""
    box = []
    t = threading.Thread(target=lambda: box.append(p.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not box or not box[0]:
        raise HarnessError(f"{what} printed nothing within {timeout}s (exit {p.poll()})")
    return box[0].decode().strip()


def drain_stdout(p):
    """Keeps reading a child's stdout so that it never blocks on a full pipe."""

    def run():
        for _ in iter(p.stdout.readline, b""):
            pass

    threading.Thread(target=run, daemon=True).start()
