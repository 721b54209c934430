# Shared by pg-ha's start-up and health scripts. POSIX sh: runs in Debian and Alpine images.

PGHA_CONF=/etc/pg-ha/postgresql.conf
PGHA_SECRETS=/etc/pg-ha/secrets
PGHA_RUN=/run/pg-ha
# The bootstrap server listens here only, so nothing (health checks included) mistakes it for the real one.
PGHA_BOOTSTRAP_SOCKETS=/run/pg-ha/bootstrap

pgha_log() {
  echo "pg-ha: $*" >&2
}

# The tool this image has for dropping root: gosu (Debian images), su-exec (Alpine) or setpriv.
pgha_dropper() {
  if command -v gosu >/dev/null 2>&1; then echo gosu
  elif command -v su-exec >/dev/null 2>&1; then echo su-exec
  elif command -v setpriv >/dev/null 2>&1; then echo setpriv
  else pgha_log "no gosu, su-exec or setpriv in this image: cannot drop root"; return 1
  fi
}

# Runs a command as USER (exec replaces the shell when the first argument is "exec").
pgha_as() {
  _mode=run
  if [ "$1" = exec ]; then _mode=exec; shift; fi
  _user=$1; shift
  _tool=$(pgha_dropper) || exit 1
  case $_tool in
    setpriv) set -- setpriv --reuid="$_user" --regid="$_user" --init-groups "$@" ;;
    *) set -- "$_tool" "$_user" "$@" ;;
  esac
  if [ $_mode = exec ]; then exec "$@"; else "$@"; fi
}

# Copies a root-only uploaded secret to where USER alone can read it (mode 0600).
pgha_install_secret() {
  _src=$1 _dest=$2 _user=$3
  mkdir -p "$(dirname "$_dest")"
  cp "$_src" "$_dest.tmp"
  chown "$_user:$_user" "$_dest.tmp"
  chmod 0600 "$_dest.tmp"
  mv "$_dest.tmp" "$_dest"
}

# The live configuration: a volume the container mounts read-only, written by a created-only
# writer container that `pulumi up` replaces when a file changes. The server is not replaced;
# pgha_watch_live notices the change and reloads it.
PGHA_LIVE=/etc/pg-ha/live

# A checksum of the files of DIR and of its subdirectories, to notice a change. Two processes
# a poll: on these machines a fork costs milliseconds, and every server polls.
pgha_tree_sum() {
  cat "$1"/* "$1"/*/* 2>/dev/null | cksum
}

# Runs COMMAND... whenever the files under DIR change: polled every 2 s, and acted on only once
# the new content has stayed the same for one more poll, so a file the writer is still unpacking
# is never read half-written. Runs until the container stops; call it in the background.
pgha_watch_live() {
  _dir=$1; shift
  _applied=$(pgha_tree_sum "$_dir")
  _seen=$_applied
  while :; do
    sleep 2
    _now=$(pgha_tree_sum "$_dir")
    if [ "$_now" != "$_seen" ]; then _seen=$_now; continue; fi
    if [ "$_now" != "$_applied" ]; then
      pgha_log "the live configuration in $_dir changed: applying it by reload"
      if "$@"; then _applied=$_now; else pgha_log "applying the live configuration failed; trying again in 2 s"; fi
    fi
  done
}
