#!/bin/sh
# Entrypoint of PgBouncer. As root it only hands the TLS key and the userlist to the PgBouncer
# user (mode 0600); PgBouncer then drops root itself (-u) before serving anyone. pgbouncer.ini
# and the certificates come from the live configuration volume: when `pulumi up` rewrites them,
# PgBouncer reloads (SIGHUP, its RELOAD) and keeps every client connection.
set -eu
. /usr/local/lib/pg-ha/common.sh

user=${PGHA_PGBOUNCER_USER:-postgres}
if [ "$(id -u)" != 0 ]; then
  pgha_log "must start as root to install the key for $user (set the container's user to root)"
  exit 1
fi
mkdir -p "$PGHA_RUN"
chown "$user" "$PGHA_RUN"
chmod 0700 "$PGHA_RUN"
pgha_install_secret "$PGHA_SECRETS/server.key" "$PGHA_RUN/server.key" "$user"
pgha_install_secret "$PGHA_SECRETS/userlist.txt" "$PGHA_RUN/userlist.txt" "$user"
# The rendered files keep their usual paths, read through to the live volume.
ln -sfn "$PGHA_LIVE/tls" /etc/pg-ha/tls
ln -sfn "$PGHA_LIVE/pgbouncer.ini" /etc/pg-ha/pgbouncer.ini
# After the exec below, $$ is PgBouncer itself.
pgha_watch_live "$PGHA_LIVE" kill -HUP $$ &
exec pgbouncer -u "$user" /etc/pg-ha/pgbouncer.ini
