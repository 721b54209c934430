#!/bin/sh
# Entrypoint of a Patroni-managed PostgreSQL node. As root: directories, and the root-only secrets
# copied to where only postgres reads them. Then Patroni, as postgres, with its configuration
# directory: the rendered patroni.yml and the REST credentials (merged by Patroni in name order).
# Whether this node initialises, clones, rewinds or follows is Patroni's decision, not ours.
set -eu
. /usr/local/lib/pg-ha/common.sh

: "${PGDATA:?PGDATA must be set}"
PATRONI_DIR=$PGHA_RUN/patroni

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$(dirname "$PGDATA")" "$PGHA_RUN" "$PATRONI_DIR" /var/run/postgresql
  chown postgres:postgres "$(dirname "$PGDATA")" "$PGHA_RUN" "$PATRONI_DIR"
  if [ -d "$PGDATA" ]; then chown postgres:postgres "$PGDATA"; chmod 0700 "$PGDATA"; fi
  # The shared WAL archive: whichever node is primary writes it, so every node may.
  if [ -d /var/lib/pg-ha/wal-archive ]; then chown postgres:postgres /var/lib/pg-ha/wal-archive; fi
  chmod 0755 "$PGHA_RUN"
  for key in server.key replication.key rewind.key etcd-client.key reconcile.sql; do
    pgha_install_secret "$PGHA_SECRETS/$key" "$PGHA_RUN/$key" postgres
  done
  cp /etc/pg-ha/patroni.yml "$PATRONI_DIR/10-patroni.yml"
  pgha_install_secret "$PGHA_SECRETS/patroni-secrets.yml" "$PATRONI_DIR/20-secrets.yml" postgres
  chown postgres:postgres "$PATRONI_DIR/10-patroni.yml"
  pgha_as exec postgres "$0" "$@"
fi

exec patroni "$PATRONI_DIR"
