#!/bin/sh
# Health of a Patroni node: Patroni's REST API over HTTPS (certificate verified) answers /health,
# which is 200 while PostgreSQL runs (as primary or replica). Bounded at 4 s, below the check's 5 s
# timeout: Python with ssl alone took ~3 s to answer on a loaded machine.
set -eu
exec timeout -s KILL 4 python3 -c '
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile="/etc/pg-ha/tls/ca.crt")
try:
    urllib.request.urlopen("https://127.0.0.1:8008/health", context=context, timeout=3)
except Exception as error:
    print(error)
    sys.exit(1)
'
