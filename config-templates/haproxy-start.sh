#!/bin/sh
# Entrypoint of the router. haproxy.cfg and the CA certificate come from the live configuration
# volume: when `pulumi up` rewrites them, the master reloads (SIGUSR2). New workers take over the
# listeners at once; the old ones finish the sessions they hold, so no connection is cut.
set -eu
. /usr/local/lib/pg-ha/common.sh

# The rendered files keep their usual paths, read through to the live volume.
ln -sfn "$PGHA_LIVE/tls" /etc/pg-ha/tls
ln -sf "$PGHA_LIVE/haproxy.cfg" /etc/pg-ha/haproxy.cfg
# After the exec below, $$ is HAProxy's master.
pgha_watch_live "$PGHA_LIVE" kill -USR2 $$ &
# -W: master-worker, so a reload never drops the listeners; files are read in this order.
exec haproxy -W -db -f /etc/pg-ha/secrets/haproxy-credentials.cfg -f /etc/pg-ha/haproxy.cfg
