#!/bin/sh
# Restore drill: proves the newest backup restores. Restores it into a throwaway directory on the
# repository volume (consistent point only, then promoted), starts PostgreSQL on a private socket
# (no TCP), checks that it accepts writes, that it is this cluster (system identifier), that the
# canary row written at bootstrap is there, runs pg_amcheck over every database, stops it cleanly
# and verifies the data checksums. Writes last-drill.json, logs one line, exits 1 on failure.
# Run by the scheduler; on demand: docker exec <cluster>-backup /usr/local/lib/pg-ha/restore-drill.sh
set -u
. /usr/local/lib/pg-ha/common.sh

if [ "$(id -u)" = 0 ]; then pgha_as exec postgres "$0" "$@"; fi

: "${PGBACKREST_STANZA:?PGBACKREST_STANZA must be set}"
STATUS_DIR=/var/lib/pgbackrest/pg-ha
DATA=$STATUS_DIR/drill-data
SOCKET=$STATUS_DIR/drill-socket
RESULT=$STATUS_DIR/last-drill.json
LOG=$STATUS_DIR/drill.log
DRILL="pgbackrest --config=/etc/pg-ha/pgbackrest-drill.conf --config-include-path=/run/pg-ha/pgbackrest.d --stanza=$PGBACKREST_STANZA"
# Bounds, so a hung step fails the drill instead of stalling the scheduler.
START_SECONDS=${RESTORE_DRILL_START_SECONDS:-900}
AMCHECK_SECONDS=${RESTORE_DRILL_AMCHECK_SECONDS:-1800}
# Only this cluster's newest, or the label given: restore-drill.sh [backup label]
SET=${1:-latest}

mkdir -p "$STATUS_DIR"
exec 9>"$STATUS_DIR/drill.lock"
flock -n 9 || { pgha_log "restore drill: another drill is running"; exit 2; }

started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
label="" step="" error=""
checks=""

# Stops a server left by an interrupted drill, and removes the throwaway directory.
cleanup() {
  if [ -f "$DATA/postmaster.pid" ]; then pg_ctl -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1 || true; fi
  rm -rf "$DATA" "$SOCKET"
}

check() { checks="${checks:+$checks }$1=$2"; }

fail() {
  error="$step: $1"
  finish failed
}

finish() {
  result=$1
  cleanup
  seconds=$(( $(date +%s) - t0 ))
  python3 - "$RESULT" "$result" "$label" "$started_at" "$seconds" "$error" $checks <<'PY'
import json, os, sys
path, result, label, started, seconds, error, *checks = sys.argv[1:]
doc = {"result": result, "backup": label or None, "startedAt": started, "seconds": int(seconds),
       "checks": dict(c.split("=", 1) for c in checks), "error": error or None}
with open(path + ".tmp", "w") as f:
    json.dump(doc, f)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
  if [ "$result" = passed ]; then
    pgha_log "restore drill passed: backup $label restored and checked in ${seconds} s ($checks)"
    exit 0
  fi
  pgha_log "restore drill FAILED: backup ${label:-none}: $error (after ${seconds} s)"
  exit 1
}

# A step's error on one line for the result file: from pgBackRest's first ERROR, else the last lines.
tail_of() {
  { grep -a -m 1 -A 3 'ERROR' "$1" || tail -n 5 "$1"; } | tr '\n' ' ' | sed 's/  */ /g' | cut -c 1-1000
}

cleanup
mkdir -m 0700 "$DATA" "$SOCKET"

step=info
info=$($DRILL --output=json info 2>"$LOG") || fail "pgbackrest info: $(tail_of "$LOG")"
# The label to restore and the system identifier its database must have.
set -- $(printf '%s' "$info" | python3 -c '
import json, sys
want = sys.argv[1]
stanza = json.load(sys.stdin)[0]
backups = stanza.get("backup", [])
chosen = backups[-1] if want == "latest" and backups else next((b for b in backups if b["label"] == want), None)
if chosen:
    db = next(d for d in stanza["db"] if d["id"] == chosen["database"]["id"])
    print(chosen["label"], db["system-id"])
' "$SET") || true
label=${1:-}; system_id=${2:-}
[ -n "$label" ] || fail "no backup to restore ($SET)"

step=restore
t=$(date +%s)
$DRILL --set="$label" --type=immediate --target-action=promote --archive-mode=off restore >"$LOG" 2>&1 \
  || fail "pgbackrest restore: $(tail_of "$LOG")"
check restoreSeconds $(( $(date +%s) - t ))

# The restored settings are a node's: no TCP, no TLS, no archiving, no synchronous standbys to
# wait for, small memory; and an hba file of the drill's own (the node's lives at the node's path).
printf 'local all postgres peer\n' >"$DATA/drill_hba.conf"
: >"$DATA/drill_ident.conf"
step=start
t=$(date +%s)
pg_ctl -D "$DATA" -l "$STATUS_DIR/drill-postgres.log" -w -t "$START_SECONDS" start -o "\
 -c listen_addresses= -c unix_socket_directories=$SOCKET -c port=5432 -c ssl=off\
 -c hba_file=$DATA/drill_hba.conf -c ident_file=$DATA/drill_ident.conf\
 -c archive_mode=off -c synchronous_standby_names= -c primary_conninfo= -c logging_collector=off\
 -c shared_buffers=128MB -c huge_pages=off -c max_parallel_workers_per_gather=0" >/dev/null 2>&1 \
  || fail "PostgreSQL did not start: $(tail_of "$STATUS_DIR/drill-postgres.log")"

sql() { psql -X -qtA -h "$SOCKET" -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1" 2>>"$LOG"; }
# Promotion follows recovery to the consistent point: wait until it accepts writes.
step=writes
deadline=$(( $(date +%s) + START_SECONDS ))
until [ "$(sql 'SELECT pg_is_in_recovery()')" = f ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "still in recovery after ${START_SECONDS} s"
  sleep 1
done
sql 'CREATE TABLE pg_ha_drill_probe (); DROP TABLE pg_ha_drill_probe' >/dev/null || fail "no write accepted: $(tail_of "$LOG")"
check startSeconds $(( $(date +%s) - t ))
check writes passed

step=system-identifier
[ "$(sql 'SELECT system_identifier FROM pg_control_system()')" = "$system_id" ] || fail "not the stanza's database (expected $system_id)"
check systemIdentifier passed

step=canary
[ "$(sql 'SELECT count(*) FROM public.pg_ha_restore_canary')" -ge 1 ] 2>/dev/null || fail "the canary row is missing: $(tail_of "$LOG")"
check canary passed

step=amcheck
t=$(date +%s)
timeout -s KILL "$AMCHECK_SECONDS" pg_amcheck -h "$SOCKET" -p 5432 -U postgres --all --install-missing >"$LOG" 2>&1 \
  || fail "pg_amcheck: $(tail_of "$LOG")"
check amcheckSeconds $(( $(date +%s) - t ))
check amcheck passed

step=stop
pg_ctl -D "$DATA" -m fast -w -t 300 stop >/dev/null 2>&1 || fail "PostgreSQL did not stop cleanly"

step=checksums
pg_checksums --check -D "$DATA" >"$LOG" 2>&1 || fail "pg_checksums: $(tail_of "$LOG")"
check checksums passed

finish passed
