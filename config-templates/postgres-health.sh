#!/bin/sh
# Health of a PostgreSQL node: the real server answers over TCP on the cluster network (the
# bootstrap server listens on no TCP port), and a replica is healthy only while its WAL receiver
# streams. pg_isready stops at the SCRAM challenge, so it needs no password and logs nothing.
#
# Docker gives up on a check after the healthcheck's timeout and kills only this shell, so every
# client below runs under `timeout`, and the bounds together stay below that timeout: none is left
# behind to be orphaned.
set -eu
. /usr/local/lib/pg-ha/common.sh

timeout -s KILL 2 pg_isready -q -h "$(hostname)" -p 5432 -U monitor -d postgres -t 2 \
  || { echo "not accepting TCP connections"; exit 1; }

[ "${PGHA_ROLE:-}" = replica ] || exit 0
state=$(pgha_as postgres timeout -s KILL 2 psql -X -qtA -h /var/run/postgresql -U postgres -d postgres \
  -c "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no wal receiver')") \
  || { echo "WAL receiver state not read within 2 s"; exit 1; }
[ "$state" = streaming ] || { echo "$state"; exit 1; }
