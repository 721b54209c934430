#!/bin/sh
# Entrypoint of every PostgreSQL node (PGHA_ROLE=primary|replica). Idempotent across restarts.
# As root: directories and TLS keys with the right owners. As postgres: initialise or clone
# when PGDATA is empty, reconcile roles and slots (primary), then exec the server.
set -eu
. /usr/local/lib/pg-ha/common.sh

: "${PGDATA:?PGDATA must be set}"
: "${PGHA_ROLE:?PGHA_ROLE must be primary or replica}"

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" "$PGHA_RUN" "$PGHA_BOOTSTRAP_SOCKETS" /var/run/postgresql
  chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")" "$PGHA_RUN" "$PGHA_BOOTSTRAP_SOCKETS"
  chmod 0700 "$PGDATA"
  chmod 0755 "$PGHA_RUN"
  if [ -d /var/lib/pg-ha/wal-archive ] && [ "$PGHA_ROLE" = primary ]; then
    chown postgres:postgres /var/lib/pg-ha/wal-archive
  fi
  pgha_install_secret "$PGHA_SECRETS/server.key" "$PGHA_RUN/server.key" postgres
  if [ "$PGHA_ROLE" = primary ]; then
    pgha_install_secret "$PGHA_SECRETS/reconcile.sql" "$PGHA_RUN/reconcile.sql" postgres
  else
    pgha_install_secret "$PGHA_SECRETS/replication.key" "$PGHA_RUN/replication.key" postgres
  fi
  pgha_as exec postgres "$0" "$@"
fi

# Socket-only, and without synchronous standbys: no replica can reach it, so a commit that waited
# for one would wait forever.
start_bootstrap_server() {
  pg_ctl -D "$PGDATA" -w -t 120 -l "$PGHA_RUN/bootstrap.log" start \
    -o "-c config_file=$PGHA_CONF -c listen_addresses='' -c unix_socket_directories=$PGHA_BOOTSTRAP_SOCKETS -c synchronous_standby_names=''" \
    || { cat "$PGHA_RUN/bootstrap.log" >&2; exit 1; }
}

init_primary() {
  pgha_log "initialising an empty data directory (data checksums on)"
  initdb -D "$PGDATA" --username=postgres --auth-local=peer --auth-host=reject \
    --data-checksums --encoding=UTF8 --locale-provider=builtin --locale=C.UTF-8 >/dev/null
}

clone_replica() {
  conninfo=$(sed -n "s/^primary_conninfo = '\(.*\)'\$/\1/p" "$PGHA_CONF")
  slot=$(sed -n "s/^primary_slot_name = '\(.*\)'\$/\1/p" "$PGHA_CONF")
  [ -n "$conninfo" ] && [ -n "$slot" ] || { pgha_log "primary_conninfo or primary_slot_name missing in $PGHA_CONF"; exit 1; }
  tries=0
  until pg_isready -q -d "$conninfo" -t 2; do
    tries=$((tries + 1))
    # The container's restart policy tries again later; do not wait forever here.
    [ $tries -lt 90 ] || { pgha_log "primary not reachable after $tries tries"; exit 1; }
    sleep 2
  done
  # Clone next to PGDATA on the same volume, then rename: a clone cut short never looks like data.
  partial="$PGDATA.partial"
  rm -rf "$partial"
  pgha_log "cloning the primary with pg_basebackup (slot $slot)"
  pg_basebackup -D "$partial" -d "$conninfo" -S "$slot" -X stream -c fast --no-password
  touch "$partial/standby.signal"
  rmdir "$PGDATA"
  mv "$partial" "$PGDATA"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ "$PGHA_ROLE" = primary ]; then init_primary; else clone_replica; fi
fi

if [ "$PGHA_ROLE" = primary ]; then
  # Roles, databases and slots follow the deployed verifiers and replica count on every start.
  start_bootstrap_server
  psql -X -q -h "$PGHA_BOOTSTRAP_SOCKETS" -U postgres -d postgres -f "$PGHA_RUN/reconcile.sql"
  rm -f "$PGHA_RUN/reconcile.sql"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi

exec postgres -D "$PGDATA" -c config_file="$PGHA_CONF"
