#!/bin/sh
# Entrypoint of PgBouncer. As root it only hands the TLS key and the userlist to the PgBouncer
# user (mode 0600); PgBouncer then drops root itself (-u) before serving anyone.
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
exec pgbouncer -u "$user" /etc/pg-ha/pgbouncer.ini
