#!/usr/bin/env bash
# Prints every parameter a PostgreSQL server of IMAGE knows, from `SELECT name, vartype, unit,
# enumvals FROM pg_settings` on a throwaway server (no network, socket only) that preloads the
# cluster's libraries, so pg_stat_statements.* and auto_explain.* are listed too. The committed
# lists that pg-ha:postgresParameters is checked against are its output:
#
#   scripts/postgres-parameters.sh pgha-test/postgres:18 > config-templates/pg-settings/18.tsv
#
# tests/e2e/parameters.test.ts runs it again and compares, so the lists cannot fall behind.
set -euo pipefail
image=${1:?usage: $0 IMAGE (a PostgreSQL image, e.g. pgha-test/postgres:18)}
docker run --rm --init --network none --user postgres --entrypoint sh "$image" -c '
  set -e
  initdb --auth-local=peer --auth-host=reject -D /tmp/pgdata >/dev/null
  pg_ctl -D /tmp/pgdata -w -l /tmp/server.log start \
    -o "-c listen_addresses= -c unix_socket_directories=/tmp -c shared_preload_libraries=pg_stat_statements,auto_explain" >/dev/null
  major=$(psql -X -qAt -h /tmp -d postgres -c "SHOW server_version_num" | cut -c1-2)
  echo "# PostgreSQL $major: every parameter of pg_settings, written by scripts/postgres-parameters.sh."
  echo "# pg-ha:postgresParameters accepts only these names. Tab-separated:"
  echo "# name	type	unit (when a number has none)	accepted values (enum)"
  psql -X -qAt -F "	" -h /tmp -d postgres -c "SELECT name, vartype, coalesce(unit, '"''"'), coalesce(array_to_string(enumvals, '"', '"'), '"''"') FROM pg_settings ORDER BY name COLLATE \"C\""
  pg_ctl -D /tmp/pgdata -m fast stop >/dev/null
'
