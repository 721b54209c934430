#!/bin/sh
# Patroni's callback (on_start, on_role_change), called as: ACTION ROLE SCOPE. Whenever this node
# starts as the primary or becomes it, roles, passwords and databases are brought in line with the
# deployed configuration (reconcile.sql, every statement idempotent): a password a `pulumi up`
# rotated reaches the cluster whichever node leads. Patroni runs callbacks in the background and
# logs their output; the attempts are bounded.
set -u
action=$1 role=$2
case $role in
  primary | master) ;;
  *) exit 0 ;;
esac
attempt=0
while [ "$attempt" -lt 15 ]; do
  attempt=$((attempt + 1))
  if [ "$(timeout -s KILL 10 psql -X -A -t -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] &&
    timeout -s KILL 60 psql -X -q -d postgres -f /run/pg-ha/reconcile.sql; then
    echo "pg-ha: roles and databases reconciled ($action as $role)"
    exit 0
  fi
  sleep 2
done
echo "pg-ha: reconciling roles and databases failed after $attempt attempts ($action as $role)" >&2
exit 1
