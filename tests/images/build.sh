#!/usr/bin/env bash
# Build the local stand-ins for the production images, from Debian packages
# only (no container registry is reachable on the test machines):
#
#   pgha-test/postgres:18       Debian forky  (stand-in for postgres:18)
#   pgha-test/postgres:17       Debian trixie (stand-in for postgres:17)
#   pgha-test/pgbouncer:latest  Debian forky  (stand-in for edoburu/pgbouncer)
#   pgha-test/node:latest       Debian trixie (stand-in for node:<version>-trixie-slim)
#   pgha-test/ha-tools:latest   Debian trixie (stand-in for the official etcd and haproxy images)
#
# How: debootstrap --variant=minbase into a scratch directory, chroot into it
# to create the service user with the production uid/gid and apt-get install
# the server packages, then `tar | docker import` (postgres images: plus a
# metadata-only `docker build` step, as docker import cannot set STOPSIGNAL).
#
# Idempotent: every image carries LABEL pgha.recipe=<sha256 of its recipe>;
# an image whose recipe is unchanged is not rebuilt. FORCE=1 rebuilds anyway
# (e.g. to pick up newer packages from the suites).
#
# Usage: tests/images/build.sh [IMAGE_KEY...]   (keys: postgres-18 postgres-17
#        pgbouncer node ha-tools; default: all). Needs root, debootstrap and a running
#        docker engine (see setup-engine.sh). Only talks to deb.debian.org.
set -euo pipefail

MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
CACHE_ROOT=${PGHA_CACHE_ROOT:-/var/cache/pgha-debootstrap}
# Build trees live on a real disk (not /tmp, which may be tmpfs or nodev).
WORK_ROOT=${PGHA_WORK_ROOT:-/var/tmp/pgha-images}
LOG_DIR=$WORK_ROOT/logs
LOCK_FILE=/var/lock/pgha-images.lock
ALL_KEYS=(postgres-18 postgres-17 pgbouncer node ha-tools)
SELF=$(readlink -f "${BASH_SOURCE[0]}")
export DOCKER_BUILDKIT=0 # legacy builder: works offline with a local FROM image

# ---------------------------------------------------------------------------
# Image specifications. Everything that defines an image is here or in the
# functions below; all of it goes into the recipe hash.
# ---------------------------------------------------------------------------
spec() { # spec KEY  -> sets TAG SUITE DEBOOTSTRAP_SCRIPT KIND PG_MAJOR PGDATA_DIR VOLUME_DIR EXTRA_SOURCES EARLY_PACKAGES
  TAG='' SUITE='' DEBOOTSTRAP_SCRIPT='' KIND='' PG_MAJOR='' PGDATA_DIR='' VOLUME_DIR='' EXTRA_SOURCES=''
  # forky's postgresql-common and ssl-cert depend on "systemd | systemd-
  # standalone-tmpfiles | ..." and "systemd | systemd-standalone-sysusers |
  # ..."; apt would pick the full systemd (~20 MB, useless in a container).
  # Installing the standalone alternatives first (right after the service
  # user exists) avoids it.
  EARLY_PACKAGES=''
  case "$1" in
    postgres-18)
      TAG=pgha-test/postgres:18 SUITE=forky KIND=postgres PG_MAJOR=18
      EARLY_PACKAGES="systemd-standalone-sysusers systemd-standalone-tmpfiles"
      # debootstrap 1.0.128 (bookworm) has no "forky" script; testing uses
      # the same rules as sid.
      DEBOOTSTRAP_SCRIPT=/usr/share/debootstrap/scripts/sid
      # 18+ official layout: PGDATA below the volume, volume at the parent.
      PGDATA_DIR=/var/lib/postgresql/18/docker VOLUME_DIR=/var/lib/postgresql
      ;;
    postgres-17)
      TAG=pgha-test/postgres:17 SUITE=trixie KIND=postgres PG_MAJOR=17
      PGDATA_DIR=/var/lib/postgresql/data VOLUME_DIR=/var/lib/postgresql/data
      # stable: PostgreSQL minor releases arrive through security/updates
      EXTRA_SOURCES="deb $MIRROR trixie-updates main|deb $SECURITY_MIRROR trixie-security main"
      ;;
    pgbouncer)
      TAG=pgha-test/pgbouncer:latest SUITE=forky KIND=pgbouncer
      EARLY_PACKAGES="systemd-standalone-sysusers systemd-standalone-tmpfiles"
      DEBOOTSTRAP_SCRIPT=/usr/share/debootstrap/scripts/sid
      ;;
    node)
      TAG=pgha-test/node:latest SUITE=trixie KIND=node
      EXTRA_SOURCES="deb $MIRROR trixie-updates main|deb $SECURITY_MIRROR trixie-security main"
      ;;
    ha-tools)
      # One image for both etcd members and HAProxy: one build instead of two on a fresh machine.
      TAG=pgha-test/ha-tools:latest SUITE=trixie KIND=ha-tools
      EXTRA_SOURCES="deb $MIRROR trixie-updates main|deb $SECURITY_MIRROR trixie-security main"
      ;;
    *) echo "unknown image key: $1 (known: ${ALL_KEYS[*]})" >&2; return 1 ;;
  esac
}

# Packages installed with apt inside the chroot (after the user exists).
packages() { # packages KIND PG_MAJOR
  case "$1" in
    # Patroni manages the server on every node; its etcd v3 store is reached through
    # python-etcd (Patroni's etcd3 module speaks etcd's HTTP gateway with it). The same list is
    # in images/postgres-patroni/Dockerfile (tests/unit/patroni-image.test.ts keeps them equal).
    postgres)  echo "postgresql-$2 gosu ca-certificates openssl $(patroni_packages)" ;;
    # edoburu/pgbouncer keeps Alpine's postgresql-client (psql, pg_isready)
    # in the image; health checks may rely on it.
    pgbouncer) echo "pgbouncer postgresql-client ca-certificates openssl" ;;
    node)      echo "nodejs ca-certificates" ;;
    ha-tools)  echo "etcd-server etcd-client haproxy ca-certificates" ;;
  esac
}

# What a PostgreSQL image needs to run as a Patroni node.
patroni_packages() {
  echo "patroni python3-etcd python3-psycopg pgbackrest"
}

# ---------------------------------------------------------------------------
# Functions that run INSIDE the chroot (shipped there with `declare -f`).
# ---------------------------------------------------------------------------
in_chroot_prepare() {
  set -euxo pipefail
  # Never start services while installing (same file as Debian's docker base
  # images ship): Debian's pgbouncer/postgresql packages would try to.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  # Keep docs and man pages out of the image (as debian:*-slim does); keep
  # copyright files.
  cat >/etc/dpkg/dpkg.cfg.d/pgha-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
  # Build-time apt settings (removed again in in_chroot_finish):
  # - no recommends, as the production images install;
  # - skip translation indexes (not needed, ~7 MB per update);
  # - accept an expired Release file: the reachable mirror can lag behind
  #   (forky's 7-day Valid-Until was seen expired); signatures are still
  #   checked.
  printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' \
    'Acquire::Check-Valid-Until "false";' 'Acquire::Languages "none";' \
    >/etc/apt/apt.conf.d/pgha-build
  apt-get update -q
  # Bring the debootstrapped base up to the newest versions of the enabled
  # suites (matters for trixie, whose fixes arrive via -security/-updates).
  apt-get dist-upgrade -y -q
}

# Install $EARLY_PACKAGES (see spec). Called right AFTER the service user is
# created: systemd-standalone-sysusers' postinst allocates system groups
# from 999 downwards (forky: "lpadmin" got gid 999 when run first).
in_chroot_early_packages() {
  set -euxo pipefail
  # shellcheck disable=SC2086 # word list
  if [ -n "${EARLY_PACKAGES:-}" ]; then apt-get install -y -q $EARLY_PACKAGES; fi
}

in_chroot_postgres() { # in_chroot_postgres PG_MAJOR PGDATA PACKAGES...
  set -euxo pipefail
  local major=$1 pgdata=$2
  shift 2
  # Same commands as docker-library/postgres: fixed uid/gid 999, created
  # BEFORE postgresql-common (whose postinst would otherwise pick uid ~100).
  groupadd -r postgres --gid=999
  useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
  install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql
  in_chroot_early_packages
  # postgresql-common first, then switch off the automatic "main" cluster
  # before the server package's postinst would create it (as upstream does;
  # createcluster.conf is managed by ucf, so it is edited, not pre-created).
  apt-get install -y -q postgresql-common
  sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf
  grep -qx 'create_main_cluster = false' /etc/postgresql-common/createcluster.conf
  apt-get install -y -q "$@"
  # PostgreSQL 18 moved LLVM JIT into its own package; the official image
  # installs it when available, so do the same (17 has JIT built in).
  if apt-cache show "postgresql-$major-jit" >/dev/null 2>&1; then
    apt-get install -y -q "postgresql-$major-jit"
  fi
  # Upstream image: listen_addresses = '*' in the sample config, so a freshly
  # initdb'd cluster listens on all interfaces.
  dpkg-divert --add --rename --divert /usr/share/postgresql/postgresql.conf.sample.dpkg \
    "/usr/share/postgresql/$major/postgresql.conf.sample"
  cp /usr/share/postgresql/postgresql.conf.sample.dpkg /usr/share/postgresql/postgresql.conf.sample
  ln -s ../postgresql.conf.sample "/usr/share/postgresql/$major/"
  sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/postgresql.conf.sample
  grep -F "listen_addresses = '*'" /usr/share/postgresql/postgresql.conf.sample
  # Socket directory exactly like upstream (setgid + sticky, world-writable).
  install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql
  # 17 and older: upstream pre-creates PGDATA (1777; its entrypoint tightens
  # it to 0700 at run time). 18: PGDATA is created at run time under the volume.
  if [ "$major" -lt 18 ]; then
    install --directory --owner postgres --group postgres --mode 1777 "$pgdata"
  fi
  chmod 1777 /var/lib/postgresql
  mkdir -p /docker-entrypoint-initdb.d
  # Upstream ships gosu as /usr/local/bin/gosu; Debian's package puts it in
  # /usr/sbin. Provide both paths.
  if [ ! -e /usr/local/bin/gosu ]; then ln -s "$(command -v gosu)" /usr/local/bin/gosu; fi
  # Upstream generates en_US.UTF-8; generate it too so explicit
  # --locale=en_US.utf8 works (LANG stays C.UTF-8, see README).
  if [ -f /etc/locale.gen ] && command -v locale-gen >/dev/null; then
    echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
    locale-gen
  fi
  # Sanity checks: uid/gid, no Debian cluster, binaries where PATH expects them.
  [ "$(id -u postgres)" = 999 ] && [ "$(id -g postgres)" = 999 ]
  [ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]
  [ -z "$(pg_lsclusters -h)" ]
  test -x "/usr/lib/postgresql/$major/bin/postgres"
  test -x "/usr/lib/postgresql/$major/bin/initdb"
  test -x "/usr/lib/postgresql/$major/bin/pg_basebackup"
  "/usr/lib/postgresql/$major/bin/postgres" --version
  patroni --version
  pgbackrest version
}

in_chroot_pgbouncer() { # in_chroot_pgbouncer PACKAGES...
  set -euxo pipefail
  # edoburu/pgbouncer (Alpine) runs as postgres uid/gid 70; Debian's
  # postgresql-common (a pgbouncer dependency) would pick a dynamic uid.
  if getent passwd 70 || getent group 70; then
    echo "uid/gid 70 already taken in this Debian base" >&2
    exit 1
  fi
  groupadd -r -g 70 postgres
  useradd -r -g postgres -u 70 -d /var/lib/postgresql -M -s /bin/sh -c 'Postgres user' postgres
  in_chroot_early_packages
  apt-get install -y -q "$@"
  # edoburu's binary is /usr/bin/pgbouncer; Debian installs /usr/sbin/pgbouncer.
  if [ ! -e /usr/bin/pgbouncer ]; then ln -s /usr/sbin/pgbouncer /usr/bin/pgbouncer; fi
  # edoburu layout: no active config shipped (its entrypoint writes one from
  # env, or uses a mounted one as is), only *.example files, an empty
  # userlist.txt, and postgres-owned /etc/pgbouncer, /var/log/pgbouncer,
  # /var/run/pgbouncer. Debian's packaged defaults are moved aside so they
  # cannot silently take effect.
  mkdir -p /etc/pgbouncer /var/log/pgbouncer /var/run/pgbouncer
  local f
  for f in pgbouncer.ini userlist.txt; do
    if [ -f "/etc/pgbouncer/$f" ]; then mv "/etc/pgbouncer/$f" "/etc/pgbouncer/$f.example"; fi
  done
  touch /etc/pgbouncer/userlist.txt
  rm -f /etc/default/pgbouncer
  chown -R postgres /var/run/pgbouncer /etc/pgbouncer /var/log/pgbouncer
  [ "$(id -u postgres)" = 70 ] && [ "$(id -g postgres)" = 70 ]
  /usr/bin/pgbouncer --version
}

in_chroot_node() { # in_chroot_node PACKAGES...
  set -euxo pipefail
  # The official node images run services as node, uid/gid 1000, home /home/node.
  groupadd --gid 1000 node
  useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  apt-get install -y -q "$@"
  [ "$(id -u node)" = 1000 ] && [ "$(id -g node)" = 1000 ]
  node --version
}

in_chroot_ha_tools() { # in_chroot_ha_tools PACKAGES...
  set -euxo pipefail
  apt-get install -y -q "$@"
  etcd --version
  etcdctl version
  haproxy -v
}

in_chroot_finish() {
  set -euxo pipefail
  # Keep the host .deb cache (bind-mounted here) bounded: drop .debs that
  # the current package lists no longer offer.
  apt-get autoclean -y -q
  # Shrink: package lists, apt/dpkg logs and backups, docs from the
  # debootstrap stage (installed before the dpkg path-excludes existed).
  # /var/cache/apt/archives is a bind mount of the host cache: not touched.
  rm -rf /etc/apt/apt.conf.d/pgha-build /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
    /var/lib/dpkg/*-old /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log \
    /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/* \
    /tmp/* /var/tmp/* /root/.bash_history
  find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find /usr/share/doc -mindepth 1 -type d -empty -delete
  # The engine provides these at run time; do not bake in the build host's.
  : >/etc/resolv.conf
  echo localhost >/etc/hostname
}

# ---------------------------------------------------------------------------
# Host-side helpers
# ---------------------------------------------------------------------------
recipe_hash() { # recipe_hash KEY
  spec "$1"
  {
    echo "key=$1 tag=$TAG suite=$SUITE script=$DEBOOTSTRAP_SCRIPT kind=$KIND major=$PG_MAJOR"
    echo "pgdata=$PGDATA_DIR volume=$VOLUME_DIR sources=$EXTRA_SOURCES mirror=$MIRROR"
    echo "packages=$EARLY_PACKAGES $(packages "$KIND" "$PG_MAJOR")"
    # normalised function bodies (comments dropped): editing a comment does
    # not force a rebuild, changing a command does
    declare -f spec packages patroni_packages image_changes build_one build_one_exit remove_mounts \
      in_chroot_prepare in_chroot_early_packages in_chroot_postgres in_chroot_pgbouncer in_chroot_node in_chroot_ha_tools in_chroot_finish
  } | sha256sum | cut -d' ' -f1
}

# docker import -c options for KEY (spec must have been called).
image_changes() { # image_changes HASH  -> fills array CHANGES
  CHANGES=(-c "LABEL pgha.recipe=$1" -c "LABEL pgha.debian-suite=$SUITE")
  case "$KIND" in
    postgres)
      CHANGES+=(
        -c "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        -c "ENV PG_MAJOR=$PG_MAJOR"
        -c "ENV PG_VERSION=$PKG_VERSION"
        -c "ENV PGDATA=$PGDATA_DIR"
        -c "ENV LANG=C.UTF-8"
        -c "VOLUME $VOLUME_DIR"
        -c "EXPOSE 5432"
        -c 'CMD ["postgres"]'
      ) ;;
    pgbouncer)
      CHANGES+=(
        -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        -c "LABEL pgha.pgbouncer-package=$PKG_VERSION"
        -c "USER postgres"
        # edoburu/pgbouncer declares EXPOSE 5432 (its default listen_port)
        -c "EXPOSE 5432"
        -c 'CMD ["/usr/bin/pgbouncer","/etc/pgbouncer/pgbouncer.ini"]'
      ) ;;
    node)
      CHANGES+=(
        -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        -c "LABEL pgha.nodejs-package=$PKG_VERSION"
        -c 'CMD ["node"]'
      ) ;;
    ha-tools)
      CHANGES+=(
        -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        -c "LABEL pgha.ha-tools-packages=$PKG_VERSION"
        # The program sets the command of every container; this is for created-only ones
        # (secret-files.ts), which the engine refuses without any command.
        -c 'CMD ["bash"]'
      ) ;;
  esac
  # STOPSIGNAL is not accepted by `docker import -c` (engine 20.10); the
  # postgres images get it from a metadata-only docker build step in build_one.
}

# remove_tree refuses to delete while anything is still mounted below the
# tree: an `rm -rf` through the bind mount would wipe the package cache, and
# through a /dev or /proc mount it would be worse.
remove_mounts() { # remove_mounts DIR: unmount everything below DIR, deepest first
  local dir m left pass
  dir=$(readlink -f "$1")
  for pass in 1 2 3 4; do
    left=$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    [ -n "$left" ] || return 0
    [ "$pass" -lt 4 ] || break
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done <<<"$left"
  done
  echo "still mounted below $dir:" >&2
  echo "$left" >&2
  return 1
}
remove_tree() { # remove_tree DIR
  [ -d "$1" ] || return 0
  remove_mounts "$1" || { echo "not deleting $1" >&2; return 1; }
  rm -rf --one-file-system "$1"
}

# EXIT trap of a build process: always unmount and delete the build tree;
# on failure show the end of the log on the terminal.
build_one_exit() {
  local rc=$?
  remove_tree "$BUILD_ROOT" || true
  if [ "$rc" -ne 0 ]; then
    echo "[$KEY] FAILED (rc=$rc); last lines of $BUILD_LOG:" >&3
    tail -n 40 "$BUILD_LOG" >&3
  fi
}

log_step() { echo "[$KEY] $(date +%T) $*" >&3; echo "=== $(date +%T) $*"; }

# Build one image. Runs as its own process (parallel builds), stdout/stderr
# go to the image's log file, progress lines to fd 3.
build_one() { # build_one KEY HASH LOG
  KEY=$1
  local hash=$2 log=$3 start root cache old_id imported new_id
  spec "$KEY"
  start=$SECONDS
  cache=$CACHE_ROOT/$KEY # one cache per image: debootstrap/apt caches are not safe to share concurrently
  mkdir -p "$cache" "$WORK_ROOT"
  root=$(mktemp -d "$WORK_ROOT/rootfs.$KEY.XXXXXX")
  # mktemp makes it 0700; it becomes the image's "/", which every user
  # (postgres, apt's _apt sandbox) must be able to traverse.
  chmod 0755 "$root"
  BUILD_ROOT=$root BUILD_LOG=$log
  trap build_one_exit EXIT
  # Turn INT/TERM into a normal exit so the EXIT trap unmounts and cleans up.
  trap 'exit 130' INT TERM

  log_step "debootstrap $SUITE (minbase)"
  # Step 1: base system only. The server packages come in step 2, after the
  # service user has been created with the production uid/gid.
  debootstrap --variant=minbase --include=passwd --cache-dir="$cache" \
    "$SUITE" "$root" "$MIRROR" ${DEBOOTSTRAP_SCRIPT:+"$DEBOOTSTRAP_SCRIPT"}
  if [ -n "$EXTRA_SOURCES" ]; then
    tr '|' '\n' <<<"$EXTRA_SOURCES" >>"$root/etc/apt/sources.list"
  fi
  cat "$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf" # name resolution for apt in the chroot

  # Step 2: chroot. /proc for maintainer scripts; the host cache as apt's
  # archive dir so rebuilds re-use downloaded .debs.
  mount -t proc proc "$root/proc"
  # A private devpts instance lets dpkg/apt open a pty for their logs; not
  # essential, so a refusal (some sandboxes) is ignored.
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null || true
  mkdir -p "$root/var/cache/apt/archives"
  mount --bind "$cache" "$root/var/cache/apt/archives"
  local -a in_env=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
    "EARLY_PACKAGES=$EARLY_PACKAGES"
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  local pkgs
  pkgs=$(packages "$KIND" "$PG_MAJOR")
  log_step "apt-get install $pkgs"
  # shellcheck disable=SC2086,SC2016 # $pkgs is a word list; ${Version} is a dpkg-query field
  case "$KIND" in
    postgres)
      chroot "$root" "${in_env[@]}" /bin/bash -c \
        "$(declare -f in_chroot_prepare in_chroot_early_packages in_chroot_postgres); in_chroot_prepare; in_chroot_postgres \"\$@\"" \
        bash "$PG_MAJOR" "$PGDATA_DIR" $pkgs
      PKG_VERSION=$(chroot "$root" dpkg-query -W -f '${Version}' "postgresql-$PG_MAJOR") ;;
    pgbouncer)
      chroot "$root" "${in_env[@]}" /bin/bash -c \
        "$(declare -f in_chroot_prepare in_chroot_early_packages in_chroot_pgbouncer); in_chroot_prepare; in_chroot_pgbouncer \"\$@\"" \
        bash $pkgs
      PKG_VERSION=$(chroot "$root" dpkg-query -W -f '${Version}' pgbouncer) ;;
    node)
      chroot "$root" "${in_env[@]}" /bin/bash -c \
        "$(declare -f in_chroot_prepare in_chroot_node); in_chroot_prepare; in_chroot_node \"\$@\"" \
        bash $pkgs
      PKG_VERSION=$(chroot "$root" dpkg-query -W -f '${Version}' nodejs) ;;
    ha-tools)
      chroot "$root" "${in_env[@]}" /bin/bash -c \
        "$(declare -f in_chroot_prepare in_chroot_ha_tools); in_chroot_prepare; in_chroot_ha_tools \"\$@\"" \
        bash $pkgs
      PKG_VERSION="etcd/$(chroot "$root" dpkg-query -W -f '${Version}' etcd-server),haproxy/$(chroot "$root" dpkg-query -W -f '${Version}' haproxy)" ;;
  esac
  chroot "$root" "${in_env[@]}" /bin/bash -c "$(declare -f in_chroot_finish); in_chroot_finish"
  # Unmount before tar so neither /proc nor the cache end up in the image.
  remove_mounts "$root"

  log_step "docker import ($(du -sh --one-file-system "$root" | cut -f1) rootfs, package version $PKG_VERSION)"
  image_changes "$hash"
  imported=$(tar --numeric-owner -C "$root" -c . | docker import "${CHANGES[@]}" -)
  old_id=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
  if [ "$KIND" = postgres ]; then
    # Metadata-only, layer-less step: STOPSIGNAL SIGINT (PostgreSQL "fast"
    # shutdown), as upstream. The pgbouncer image keeps Docker's default
    # (SIGTERM), like edoburu/pgbouncer.
    printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$imported" | docker build -q -t "$TAG" - >/dev/null
  else
    docker tag "$imported" "$TAG"
  fi
  new_id=$(docker image inspect -f '{{.Id}}' "$TAG")
  # Drop the superseded image of an earlier recipe (fails harmlessly if a
  # container still uses it).
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  log_step "built $TAG in $((SECONDS - start))s"
}

smoke() { # smoke KEY: print versions straight from the image
  spec "$1"
  case "$KIND" in
    postgres)  docker run --rm "$TAG" postgres --version ;;
    pgbouncer) docker run --rm "$TAG" pgbouncer --version | head -n 1 ;;
    node)      docker run --rm "$TAG" node --version ;;
    ha-tools)  echo "$(docker run --rm "$TAG" etcd --version | head -n 1), $(docker run --rm "$TAG" haproxy -v | head -n 1)" ;;
  esac
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
if [ "${1:-}" = __build ]; then # internal: one image, in its own process
  shift
  build_one "$@"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then echo "build.sh must run as root (debootstrap, chroot, mount)" >&2; exit 1; fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: run tests/images/setup-engine.sh" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "docker engine not answering: run tests/images/setup-engine.sh" >&2; exit 1; }

keys=("$@")
[ "${#keys[@]}" -gt 0 ] || keys=("${ALL_KEYS[@]}")
for k in "${keys[@]}"; do spec "$k"; done # validate

mkdir -p "$WORK_ROOT" "$LOG_DIR" "$CACHE_ROOT" "$(dirname "$LOCK_FILE")"
# One build.sh at a time on this machine (it also clears stale build trees).
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
  echo "another build.sh holds $LOCK_FILE; waiting" >&2
  flock 9
fi
# Leftovers of an interrupted run (possibly with mounts still active).
for stale in "$WORK_ROOT"/rootfs.*; do
  [ -e "$stale" ] || continue
  echo "removing stale build tree $stale"
  remove_tree "$stale"
done

total_start=$SECONDS
declare -A pids=() hashes=()
# Job control: every build runs in its own process group, so one signal
# reaches its whole tree (debootstrap, chroot'd apt/dpkg). On INT/TERM the
# builds are stopped and their EXIT traps unmount and delete the trees.
set -m
stop_builds() {
  trap - INT TERM
  echo "interrupted: stopping builds" >&2
  local p
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  wait || true
  exit 130
}
trap stop_builds INT TERM
for k in "${keys[@]}"; do
  spec "$k"
  hashes[$k]=$(recipe_hash "$k")
  have=$(docker image inspect -f '{{index .Config.Labels "pgha.recipe"}}' "$TAG" 2>/dev/null || true)
  if [ "${FORCE:-0}" != 1 ] && [ "$have" = "${hashes[$k]}" ]; then
    echo "[$k] $TAG is up to date (recipe ${hashes[$k]:0:12}), skipping"
    continue
  fi
  echo "[$k] building $TAG (recipe ${hashes[$k]:0:12}, log $LOG_DIR/$k.log)"
  # Builds are mostly network- and dpkg-bound and use separate trees and
  # caches, so all of them run in parallel even on 2 cores.
  # shellcheck disable=SC2094 # the log path is only an argument for the child
  "$SELF" __build "$k" "${hashes[$k]}" "$LOG_DIR/$k.log" 3>&1 >"$LOG_DIR/$k.log" 2>&1 </dev/null &
  pids[$k]=$!
done

failed=0
for k in "${!pids[@]}"; do
  if ! wait "${pids[$k]}"; then
    echo "[$k] build failed; full log: $LOG_DIR/$k.log" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1

# Superseded images of earlier recipes that were still in use when their
# replacement was built: remove them once unused (docker rmi refuses while a
# container uses them). Only images carrying this script's label qualify.
docker images -q --filter dangling=true --filter label=pgha.recipe | xargs -r docker rmi >/dev/null 2>&1 || true

echo "--- smoke check"
for k in "${keys[@]}"; do
  spec "$k"
  printf '%-28s %-8s %s\n' "$TAG" "$(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%dMB", $1 / 1000000 }')" "$(smoke "$k")"
done
echo "total: $((SECONDS - total_start))s"
