#!/bin/sh
# Patroni's post_bootstrap: runs once, on the member that initialised the cluster, with a
# connection string to its new server ($1, the superuser over the local socket). Creates the
# roles and databases with their SCRAM verifiers (reconcile.sql, rendered without slots: Patroni
# manages the replication slots).
set -eu
# A cluster restored from a backup carries the source's postgresql.auto.conf, with the recovery
# settings pgBackRest wrote (restore_command, the target): this stack's configuration rules instead.
psql -X -q -d "$1" -c 'ALTER SYSTEM RESET ALL' -c 'SELECT pg_reload_conf()' >/dev/null
exec psql -X -q -d "$1" -f /run/pg-ha/reconcile.sql
