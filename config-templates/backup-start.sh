#!/bin/sh
# Entrypoint of the pgBackRest repository host. As root: the repository volume handed to
# postgres, the keys and the repository's passphrase copied to where only postgres reads them.
# Then, as postgres, the scheduler: it keeps pgBackRest's TLS server running, creates the stanza,
# takes the backups and runs the restore drills.
set -eu
. /usr/local/lib/pg-ha/common.sh

REPO=/var/lib/pgbackrest
INCLUDE_DIR=$PGHA_RUN/pgbackrest.d

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGHA_RUN" "$REPO/pg-ha"
  chmod 0755 "$PGHA_RUN"
  # A new volume is root's; files an operator created as root would stop the backups.
  find "$REPO" ! -user postgres -exec chown postgres:postgres {} +
  chmod 0750 "$REPO"
  pgha_install_secret "$PGHA_SECRETS/server.key" "$PGHA_RUN/server.key" postgres
  pgha_install_secret "$PGHA_SECRETS/backup-repo-client.key" "$PGHA_RUN/backup-repo-client.key" postgres
  install -d -o postgres -g postgres -m 0700 "$INCLUDE_DIR"
  pgha_install_secret "$PGHA_SECRETS/pgbackrest-cipher.conf" "$INCLUDE_DIR/cipher.conf" postgres
  pgha_as exec postgres "$0" "$@"
fi

exec python3 /usr/local/lib/pg-ha/backup-scheduler.py
