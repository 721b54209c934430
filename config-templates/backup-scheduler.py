#!/usr/bin/env python3
"""The repository host's main process (under tini): keeps pgBackRest's TLS server running, creates
the stanza once a primary answers, and every TICK seconds decides from the repository itself
(`pgbackrest info`) and the drill's status file whether a full or differential backup or a restore
drill is due. All state is in the repository volume, so a re-created container carries on where
the last one stopped. Intervals in minutes come from the environment (0 drill minutes: no drill).
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

STANZA = os.environ["PGBACKREST_STANZA"]
FULL_SECONDS = float(os.environ["BACKUP_FULL_INTERVAL_MINUTES"]) * 60
DIFF_SECONDS = float(os.environ["BACKUP_DIFF_INTERVAL_MINUTES"]) * 60
DRILL_SECONDS = float(os.environ.get("RESTORE_DRILL_INTERVAL_MINUTES", "0")) * 60
TICK_SECONDS = float(os.environ.get("BACKUP_TICK_SECONDS", "30"))
# After a failed backup, wait this long before the next attempt (a failover, a node down).
RETRY_SECONDS = float(os.environ.get("BACKUP_RETRY_SECONDS", "300"))
# info, stanza-create and check: a node that does not answer holds them up to pgBackRest's own
# timeouts (stanza-create waited 60 s for a stopped node, holding the archive lock meanwhile).
SHORT_COMMAND_SECONDS = 300
STATUS_DIR = "/var/lib/pgbackrest/pg-ha"
LAST_DRILL = os.path.join(STATUS_DIR, "last-drill.json")
LAST_BACKUP = os.path.join(STATUS_DIR, "last-backup.json")
DRILL_SCRIPT = "/usr/local/lib/pg-ha/restore-drill.sh"

stopping = threading.Event()
children = set()  # running commands, stopped with us


def log(message):
    print(f"pg-ha: {message}", file=sys.stderr, flush=True)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args, capture=False, timeout=None):
    """Runs a command as our child (stopped with us, killed after `timeout` s); returns (exit code, output if captured)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None, text=True)
    children.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out = (out or "") + f"\n(killed after {timeout} s)"
    finally:
        children.discard(proc)
    return proc.returncode, out or ""


def keep_server_running():
    """pgBackRest's TLS server: the nodes push WAL through it. Restarted whenever it exits."""
    while not stopping.is_set():
        started = time.monotonic()
        code, _ = run(["pgbackrest", "server"])
        if stopping.is_set():
            return
        log(f"pgbackrest server exited with code {code}; restarting")
        # A server that dies at once (bad certificate) is not restarted in a tight loop.
        stopping.wait(1 if time.monotonic() - started > 10 else 5)


def write_json(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
        f.write("\n")
    os.replace(path + ".tmp", path)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stanza_info():
    """The stanza's entry of `pgbackrest info`, or None when the command failed."""
    code, out = run(["pgbackrest", "--output=json", "info"], capture=True, timeout=SHORT_COMMAND_SECONDS)
    if code != 0:
        log(f"pgbackrest info failed ({code}): {out.strip()[-500:]}")
        return None
    try:
        return next(s for s in json.loads(out) if s["name"] == STANZA)
    except (ValueError, StopIteration, KeyError):
        log(f"pgbackrest info: no stanza {STANZA} in {out.strip()[-500:]}")
        return None


def stanza_exists(info):
    # 1: missing stanza path, 3: missing stanza data (see `pgbackrest help info`).
    return info["status"]["code"] not in (1, 3)


def create_stanza():
    code, out = run(["pgbackrest", "stanza-create"], capture=True, timeout=SHORT_COMMAND_SECONDS)
    if code != 0:
        log(f"stanza {STANZA} not created yet (no primary answered?): {out.strip()[-500:]}")
        return False
    log(f"stanza {STANZA} created")
    # Proves the primary's archive_command reaches this repository; only logged.
    code, out = run(["pgbackrest", "check"], capture=True, timeout=SHORT_COMMAND_SECONDS)
    log(f"pgbackrest check: {'passed' if code == 0 else 'FAILED: ' + out.strip()[-500:]}")
    return True


def due_backup(info, now):
    """'full', 'diff' or None, from the newest backups' start times."""
    backups = info.get("backup", [])
    fulls = [b for b in backups if b["type"] == "full"]
    if not fulls or now - fulls[-1]["timestamp"]["start"] >= FULL_SECONDS:
        return "full"
    if now - backups[-1]["timestamp"]["start"] >= DIFF_SECONDS:
        return "diff"
    return None


def take_backup(kind):
    log(f"{kind} backup starting")
    started, t0 = now_iso(), time.monotonic()
    code, out = run(["pgbackrest", f"--type={kind}", "backup"], capture=True)
    seconds = round(time.monotonic() - t0)
    label = next((line.split("new backup label = ")[1].strip() for line in out.splitlines() if "new backup label = " in line), None)
    # pgBackRest's own account (what was copied, what expiry removed) belongs in the log too.
    sys.stderr.write(out)
    sys.stderr.flush()
    result = "passed" if code == 0 else "failed"
    write_json(LAST_BACKUP, {"result": result, "type": kind, "backup": label, "startedAt": started,
                             "seconds": seconds, "error": None if code == 0 else out.strip()[-1000:]})
    if code == 0:
        log(f"{kind} backup {label} done in {seconds} s")
    else:
        log(f"{kind} backup FAILED after {seconds} s (code {code}): {out.strip()[-1000:]}")
    return code == 0


def drill_due(info, now):
    if DRILL_SECONDS <= 0 or not info.get("backup"):
        return False
    last = read_json(LAST_DRILL)
    if not last:
        return True
    try:
        started = datetime.datetime.strptime(last["startedAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (KeyError, ValueError):
        return True
    return now - started.timestamp() >= DRILL_SECONDS


def on_signal(signum, _frame):
    stopping.set()
    for proc in list(children):
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(STATUS_DIR, exist_ok=True)
    log(f"backup scheduler for stanza {STANZA}: full every {FULL_SECONDS / 60:g} min, diff every "
        f"{DIFF_SECONDS / 60:g} min, restore drill every {DRILL_SECONDS / 60:g} min (0: never)")
    threading.Thread(target=keep_server_running, daemon=True).start()
    backup_failed_at = None
    while not stopping.is_set():
        info = stanza_info()
        if info is not None and not stanza_exists(info):
            if create_stanza():
                info = stanza_info()
            else:
                info = None
        if info is not None and stanza_exists(info) and not stopping.is_set():
            kind = due_backup(info, time.time())
            if kind and (backup_failed_at is None or time.monotonic() - backup_failed_at >= RETRY_SECONDS):
                if take_backup(kind):
                    info = stanza_info() or info
                else:
                    backup_failed_at = time.monotonic()
            if not stopping.is_set() and drill_due(info, time.time()):
                run([DRILL_SCRIPT])
        stopping.wait(TICK_SECONDS)
    log("backup scheduler stopped")


if __name__ == "__main__":
    main()
