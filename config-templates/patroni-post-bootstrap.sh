#!/bin/sh
# Patroni's post_bootstrap: runs once, on the member that initialised the cluster, with a
# connection string to its new server ($1, the superuser over the local socket). Creates the
# roles and databases with their SCRAM verifiers (reconcile.sql, rendered without slots: Patroni
# manages the replication slots).
set -eu
exec psql -X -q -d "$1" -f /run/pg-ha/reconcile.sql
