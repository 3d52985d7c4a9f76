#!/bin/sh
# tools/deps.sh build|test - what `make` needs, found the way the build
# finds it (pkg-config, a header, a command); only what is missing is
# installed, with apt-get, on Debian or Ubuntu (and their derivatives).
# Elsewhere it names what to install and fails.
#   build  the compiler, CMake, pkg-config and the libraries
#   test   build's, plus busted, cmocka, Node/npm, Chromium, promtool,
#          redis-server, haproxy and testssl.sh (make test)
set -eu
what=${1:-build}
missing="" names=""

# need DEBIAN-PACKAGE DESCRIPTION CHECK...: the package is missing when CHECK fails.
need() {
  pkg=$1 desc=$2
  shift 2
  if ! "$@" >/dev/null 2>&1; then
    missing="$missing $pkg"
    names="$names
  $desc (Debian: $pkg)"
  fi
}
has() { command -v "$1"; }
pc() { has pkg-config && pkg-config --exists "$1"; }
header() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - -o /dev/null; }

need cmake "CMake 3.18+" has cmake
need gcc "a C11 compiler (cc)" has "${CC:-cc}"
need make "make" has make
need pkg-config "pkg-config" has pkg-config
need libuv1-dev "libuv (pkg-config libuv)" pc libuv
need libjansson-dev "jansson (pkg-config jansson)" pc jansson
need liblua5.4-dev "Lua 5.4 (pkg-config lua5.4)" pc lua5.4
need libssl-dev "OpenSSL (pkg-config openssl)" pc openssl
need libwslay-dev "wslay (wslay/wslay.h)" header wslay/wslay.h
need libhttp-parser-dev "http-parser (http_parser.h)" header http_parser.h
need libhiredis-dev "hiredis (pkg-config hiredis)" pc hiredis
need liburing-dev "liburing (pkg-config liburing)" pc liburing
# gc.json: the Lua adapter dlopens lua-cjson's library at run time.
cjson() { for d in /usr/lib/*-linux-gnu /usr/lib /usr/local/lib; do [ -e "$d/liblua5.4-cjson.so.0" ] && return 0; done; ldconfig -p 2>/dev/null | grep -q 'liblua5\.4-cjson\.so\.0'; }
need lua-cjson "lua-cjson for Lua 5.4 (liblua5.4-cjson.so.0), gc.json" cjson
if [ "$what" = test ]; then
  need lua5.4 "the Lua 5.4 interpreter (lua5.4)" has lua5.4
  need lua-busted "busted" has busted
  need libcmocka-dev "cmocka (pkg-config cmocka)" pc cmocka
  need nodejs "Node.js (node)" has node
  need npm "npm" has npm
  need chromium "Chromium (chromium)" has chromium
  need prometheus "Prometheus's promtool (prometheus)" has promtool
  need redis-server "Redis (redis-server), for e2e.redis" has redis-server
  need haproxy "HAProxy (haproxy), for e2e.cluster" has haproxy
  need testssl.sh "testssl.sh (testssl), for e2e.testssl" has testssl
  need openssl "the openssl command, for the wss tests' certificates" has openssl
fi
[ -z "$missing" ] && exit 0

debian=no
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  ids=$(. /etc/os-release && echo " ${ID:-} ${ID_LIKE:-} ")
  case $ids in *" debian "* | *" ubuntu "*) debian=yes ;; esac
fi
if [ "$debian" != yes ] || ! has apt-get >/dev/null; then
  echo "make: missing:$names" >&2
  echo "make: this is not Debian or Ubuntu: install them with your package manager, then run make again" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "make: installing missing Debian packages:$missing"
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
