#!/bin/sh
# Health of a PostgreSQL node: the real server (not the bootstrap one) answers a query over its
# socket and listens on TCP 5432; a replica is healthy only while its WAL receiver streams.
set -eu
. /usr/local/lib/pg-ha/common.sh

# 5432 = 0x1538, state 0A = LISTEN, in the kernel's socket tables.
grep -q ':1538 [0-9A-F:]* 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "not listening on 5432"; exit 1; }

query="SELECT 'ok'"
if [ "${PGHA_ROLE:-}" = replica ]; then
  query="SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no wal receiver')"
fi
state=$(pgha_as postgres psql -X -qtA -h /var/run/postgresql -U postgres -d postgres -c "$query")
case $state in
  ok | streaming) exit 0 ;;
  *) echo "$state"; exit 1 ;;
esac
