#!/bin/sh
# Patroni's bootstrap of a cluster restored from another cluster's pgBackRest repository
# (pg-ha:restoreFrom), called by Patroni on the one member that initialises the cluster, with the
# recovery options rendered into patroni.yml (--type, --target, --target-action). The source
# repository is mounted read-only and read with its passphrase; nothing of it is changed.
# pgBackRest picks the newest backup before the target and writes the recovery settings;
# PostgreSQL then replays the source's archive up to the target and promotes itself.
set -eu
: "${PGDATA:?PGDATA must be set}"
log=$(mktemp)
if pgbackrest --config=/etc/pg-ha/pgbackrest-restore.conf --config-include-path=/run/pg-ha/restore-source.d \
  --pg1-path="$PGDATA" --log-level-console=info "$@" restore >"$log" 2>&1; then
  cat "$log"; rm -f "$log"; exit 0
fi
cat "$log" >&2
# An info file that does not parse is one that did not decrypt: pgBackRest says only "no backup set".
if grep -q 'unable to load info file' "$log" && grep -q 'FormatError' "$log"; then
  echo "pg-ha: the repository of pg-ha:restoreFrom cannot be read with pg-ha:restoreCipherPass: its info files do not decrypt. Set it to the source stack's backupCipherPass." >&2
fi
rm -f "$log"
exit 1
