#!/bin/sh
# Entrypoint of a Patroni-managed PostgreSQL node. As root: directories, and the root-only secrets
# copied to where only postgres reads them. Then Patroni, as postgres, with its configuration
# directory: the rendered patroni.yml and the REST credentials (merged by Patroni in name order).
# Whether this node initialises, clones, rewinds or follows is Patroni's decision, not ours.
set -eu
. /usr/local/lib/pg-ha/common.sh

: "${PGDATA:?PGDATA must be set}"
PATRONI_DIR=$PGHA_RUN/patroni
# Present when the cluster has backups (config-templates/pgbackrest-node.conf.tmpl).
PGBACKREST_CONF=/etc/pg-ha/pgbackrest.conf

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$(dirname "$PGDATA")" "$PGHA_RUN" "$PATRONI_DIR" /var/run/postgresql
  chown postgres:postgres "$(dirname "$PGDATA")" "$PGHA_RUN" "$PATRONI_DIR"
  if [ -d "$PGDATA" ]; then chown postgres:postgres "$PGDATA"; chmod 0700 "$PGDATA"; fi
  chmod 0755 "$PGHA_RUN"
  # patroni.yml, the certificates and pgbackrest.conf live in the live configuration volume; the
  # usual paths read through to it, so a rewritten file is what every reader sees next. First:
  # what follows tests for pgbackrest.conf.
  ln -sfn "$PGHA_LIVE/tls" /etc/pg-ha/tls
  for file in patroni.yml pgbackrest.conf; do
    if [ -f "$PGHA_LIVE/$file" ]; then ln -sf "$PGHA_LIVE/$file" "/etc/pg-ha/$file"; fi
  done
  for key in server.key replication.key rewind.key etcd-client.key reconcile.sql; do
    pgha_install_secret "$PGHA_SECRETS/$key" "$PGHA_RUN/$key" postgres
  done
  if [ -f "$PGBACKREST_CONF" ]; then
    # pgBackRest: its client key, the async archive queue and its logs.
    pgha_install_secret "$PGHA_SECRETS/backup-node-client.key" "$PGHA_RUN/backup-node-client.key" postgres
    install -d -o postgres -g postgres -m 0750 /var/spool/pgbackrest /var/log/pgbackrest
  fi
  if [ -f "$PGHA_SECRETS/restore-source-cipher.conf" ]; then
    # pg-ha:restoreFrom: the source repository's passphrase, for the bootstrap's restore only.
    install -d -o postgres -g postgres -m 0700 "$PGHA_RUN/restore-source.d"
    pgha_install_secret "$PGHA_SECRETS/restore-source-cipher.conf" "$PGHA_RUN/restore-source.d/cipher.conf" postgres
  fi
  cp /etc/pg-ha/patroni.yml "$PATRONI_DIR/10-patroni.yml"
  pgha_install_secret "$PGHA_SECRETS/patroni-secrets.yml" "$PATRONI_DIR/20-secrets.yml" postgres
  chown postgres:postgres "$PATRONI_DIR/10-patroni.yml"
  pgha_as exec postgres "$0" "$@"
fi

if [ -f "$PGBACKREST_CONF" ]; then
  # pgBackRest's TLS server beside Patroni: the repository host backs this node up through it
  # when it is the primary. Restarted whenever it exits; tini reaps it when the container stops.
  (
    while :; do
      rc=0
      pgbackrest --config="$PGBACKREST_CONF" server || rc=$?
      pgha_log "pgbackrest server exited ($rc); restarting in 2 s"
      sleep 2
    done
  ) &
fi

# A rewritten live configuration: Patroni reloads its own (SIGHUP: parameters, pg_hba, the REST
# API's certificate) and PostgreSQL re-reads its certificates (SIGHUP to the postmaster). After
# the exec below, $$ is Patroni.
pgha_patroni_reload() {
  cp /etc/pg-ha/patroni.yml "$PATRONI_DIR/10-patroni.yml.new"
  mv "$PATRONI_DIR/10-patroni.yml.new" "$PATRONI_DIR/10-patroni.yml"
  kill -HUP $$
  if [ -f "$PGDATA/postmaster.pid" ]; then kill -HUP "$(head -n 1 "$PGDATA/postmaster.pid")" 2>/dev/null || true; fi
}
pgha_watch_live "$PGHA_LIVE" pgha_patroni_reload &

# The leader applies cluster-wide settings and rolls restarts (patroni-rollout.py); restarted
# whenever it exits.
(
  while :; do
    rc=0
    python3 /usr/local/lib/pg-ha/patroni-rollout.py "$PATRONI_DIR" || rc=$?
    pgha_log "patroni-rollout.py exited ($rc); restarting in 5 s"
    sleep 5
  done
) &

exec patroni "$PATRONI_DIR"
