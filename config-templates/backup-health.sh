#!/bin/sh
# Health of the pgBackRest repository host: its TLS server answers (the nodes archive WAL through
# it), and the last restore drill did not fail. A failed drill keeps the host unhealthy until a
# drill passes: a backup that does not restore must be seen.
#
# Docker kills only this shell when the check times out, so the client runs under `timeout`,
# well inside the healthcheck's 5 s. pgBackRest refuses to run as root: the check runs as postgres.
set -u
. /usr/local/lib/pg-ha/common.sh

pgha_as postgres timeout -s KILL 3 pgbackrest server-ping 127.0.0.1 >/dev/null 2>&1 \
  || { echo "pgBackRest's TLS server does not answer on port 8432"; exit 1; }

drill=/var/lib/pgbackrest/pg-ha/last-drill.json
if [ -f "$drill" ] && timeout -s KILL 1 grep -q '"result": *"failed"' "$drill"; then
  echo "the last restore drill failed (see $drill)"
  exit 1
fi
exit 0
