#!/bin/sh
# Health of a Patroni node: PostgreSQL answers over TCP, and while it is a replica its WAL
# receiver streams. Which role the node has is read from the server itself (Patroni decides it at
# run time). Only C clients run here: a check every 2 s that started Python took a tenth of a CPU
# second each time. pg_isready stops at the SCRAM challenge, so it needs no password and logs
# nothing. Failover never waits for this check: Patroni and HAProxy check on their own.
#
# Docker kills only this shell when the check times out, so each client runs under `timeout`,
# and the bounds together stay below the healthcheck's 5 s.
set -eu
. /usr/local/lib/pg-ha/common.sh

timeout -s KILL 2 pg_isready -q -h "$(hostname)" -p 5432 -U monitor -d postgres -t 2 \
  || { echo "not accepting TCP connections"; exit 1; }

state=$(pgha_as postgres timeout -s KILL 2 psql -X -qtA -h /var/run/postgresql -U postgres -d postgres \
  -c "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT status FROM pg_stat_wal_receiver), 'no wal receiver') ELSE 'primary' END") \
  || { echo "role not read within 2 s"; exit 1; }
case $state in
  primary | streaming) exit 0 ;;
  *) echo "replica: $state"; exit 1 ;;
esac
