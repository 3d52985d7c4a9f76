#!/bin/bash
# install_test.sh BUILD_DIR SOURCE_DIR [VAR=VALUE...] - the proof of
# `make install` (issue 18), without root and without network: the build
# is installed into a DESTDIR tree with a prefix that does not exist on this
# machine, and everything below runs from that tree only:
#   - an adapter (examples/echo/echo.c) builds with
#     `cc -shared -fPIC $(pkg-config --cflags game-carrier-server)`, the .pc
#     file found in the tree (PKG_CONFIG_SYSROOT_DIR maps its prefix there);
#   - the installed gcs serves it (a WebSocket echo over a real socket) and
#     finds the installed Lua adapter for a script, then exits 0 on SIGTERM;
#   - `gcs --new mygame` in a folder outside the repository writes a project
#     whose spec passes under `busted` against the installed gc.testing
#     (LUA_CPATH into the tree), which loads the installed libgc_lua.so;
#     a second --new of the same name is refused with status 2;
#   - examples/bot builds against the installed libgc_client.so and talks
#     to the installed chat.lua;
#   - the uninstall script removes every installed file.
# VAR=VALUE arguments are the environment of busted only (the sanitizers'
# LD_PRELOAD: the Lua interpreter is not instrumented, gc.testing is).
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
busted_env=("$@")
prefix=/opt/gcs-install-test
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcs-install.XXXXXX")
dest=$tmp/dest
root=$dest$prefix
gcs_pid=
manifest=$build/install_manifest.txt
# The test's install must not replace the manifest of a real `make install`
# from this build directory.
[ -e "$manifest" ] && cp -p "$manifest" "$tmp/manifest.saved"
cleanup() {
  [ -n "$gcs_pid" ] && kill -KILL "$gcs_pid" 2>/dev/null
  if [ -e "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"
  else rm -f "$manifest"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
unset GC_LUA_ADAPTER LUA_CPATH LUA_CPATH_5_4 LUA_INIT LUA_INIT_5_4 PKG_CONFIG_LIBDIR

step "cmake --install $build --prefix $prefix, DESTDIR=$dest"
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "cmake --install"; }
for f in bin/gcs lib/gcs/libgc_lua.so include/game-carrier/server.h \
         include/game-carrier/common.h share/pkgconfig/game-carrier-server.pc \
         share/gcs/gcs.service share/gcs/gcs.json share/gcs/scripts/chat.lua \
         share/gcs/examples/echo/echo.c lib/libgc_client.so \
         include/game-carrier/client.h share/gcs/examples/bot/bot.c; do
  [ -e "$root/$f" ] || fail "not installed: $prefix/$f"
done
testing_so=$(cd "$root" && find . -path '*/lua/5.4/gc/testing.so' | head -n 1)
[ -n "$testing_so" ] || fail "gc.testing (lua/5.4/gc/testing.so) not installed"
cmod=$root/${testing_so#./}
cmod=${cmod%/gc/testing.so}
echo "gc.testing: ${cmod#"$dest"}/gc/testing.so"
unit=$root/share/gcs/gcs.service
for line in "Type=simple" "ExecStart=$prefix/bin/gcs -C /etc/gcs/gcs.json" \
            'ExecReload=/bin/kill -HUP $MAINPID' "KillSignal=SIGTERM" \
            "LimitNOFILE=1048576" "Restart=on-failure"; do
  grep -qxF "$line" "$unit" || fail "gcs.service lacks the line $line"
done
grep -qF "\"$prefix/share/gcs/scripts/chat.lua\"" "$root/share/gcs/gcs.json" ||
  fail "share/gcs/gcs.json does not name the installed chat.lua"

step "an adapter built with pkg-config --cflags game-carrier-server"
export PKG_CONFIG_PATH=$root/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
cflags=$(pkg-config --cflags game-carrier-server)
echo "pkg-config --cflags: $cflags"
[ "$cflags" = "-I$root/include" ] || [ "$cflags" = "-I$root/include " ] ||
  fail "pkg-config --cflags gave '$cflags', expected -I$root/include"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
mkdir "$tmp/adapter"
(cd "$tmp/adapter" && ${CC:-cc} -shared -fPIC $cflags "$src/examples/echo/echo.c" -o libecho.so) ||
  fail "the echo adapter does not build against the installed headers"

# Starts the installed gcs with "$@" (in the background, log in $tmp/gcs.log)
# and waits for its listening line; sets $port.
start_gcs() {
  : >"$tmp/gcs.log"
  "$root/bin/gcs" "$@" 2>"$tmp/gcs.log" &
  gcs_pid=$!
  port=
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on ws://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$tmp/gcs.log")
    [ -n "$port" ] && return 0
    kill -0 "$gcs_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$tmp/gcs.log" >&2
  fail "the installed gcs $* did not log its listening line"
}
# SIGTERM, and the exit status must be 0.
stop_gcs() {
  kill -TERM "$gcs_pid"
  local rc=0
  wait "$gcs_pid" || rc=$?
  gcs_pid=
  [ "$rc" = 0 ] || { cat "$tmp/gcs.log" >&2; fail "gcs exited with $rc after SIGTERM"; }
}
# One masked text frame "hi" over a real WebSocket: "hi" must come back.
ws_echo() {
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' >&3
  local status line
  IFS= read -r -t 10 status <&3 || fail "no answer to the upgrade"
  case $status in "HTTP/1.1 101"*) ;; *) fail "upgrade answered: $status" ;; esac
  while IFS= read -r -t 10 line <&3 && [ "$line" != $'\r' ]; do :; done
  printf '\x81\x82\x01\x02\x03\x04\x69\x6b' >&3 # "hi" masked with 01 02 03 04
  local got
  got=$(timeout 10 head -c 4 <&3 | od -An -tx1 | tr -d ' \n')
  exec 3<&-
  # a text or a binary frame (the app's message_type), unmasked, "hi"
  case $got in 81026869|82026869) ;; *) fail "the echo of \"hi\" came back as '$got'" ;; esac
}

step "the installed gcs serves the adapter"
cat >"$tmp/echo.json" <<JSON
{ "adapters": [ { "type": "native", "dir": "$tmp/adapter", "name": "echo",
    "apps": [ { "name": "echo", "type_name": "echo", "file_name": "echo" } ] } ],
  "vhosts": [ { "ip": "127.0.0.1", "port": 0, "protocol": "ws", "app": "echo" } ] }
JSON
start_gcs -C "$tmp/echo.json" -w 1
ws_echo
stop_gcs
grep -q "loaded: $tmp/adapter/libecho.so" "$tmp/gcs.log" || fail "libecho.so was not the adapter loaded"

step "the installed gcs finds the installed Lua adapter"
start_gcs "$root/share/gcs/scripts/echo.lua" -a 127.0.0.1 -p 0 -w 1
ws_echo
stop_gcs
grep -q "loaded: $root/lib/gcs/libgc_lua.so" "$tmp/gcs.log" ||
  { cat "$tmp/gcs.log" >&2; fail "the Lua adapter was not taken from $prefix/lib/gcs/"; }

step "a bot built against the installed client library talks to chat.lua"
mkdir "$tmp/bot"
(cd "$tmp/bot" && ${CC:-cc} -I"$root/include" "$root/share/gcs/examples/bot/bot.c" \
   -L"$root/lib" -lgc_client -o bot) || fail "examples/bot does not build against libgc_client.so"
start_gcs "$root/share/gcs/scripts/chat.lua" -a 127.0.0.1 -p 0 -w 1
LD_LIBRARY_PATH=$root/lib env "${busted_env[@]}" "$tmp/bot/bot" 127.0.0.1 "$port" r1 bot hi \
  >"$tmp/bot.out" 2>&1 || { cat "$tmp/bot.out" >&2; fail "the installed bot failed"; }
grep -qx "heard: bot: hi" "$tmp/bot.out" || { cat "$tmp/bot.out" >&2; fail "the bot did not hear itself"; }
stop_gcs

step "gcs --new mygame, outside the repository"
mkdir "$tmp/work"
cd "$tmp/work"
"$root/bin/gcs" --new mygame
for f in mygame.lua spec/mygame_spec.lua .busted mygame.json README.md; do
  [ -s "mygame/$f" ] || fail "gcs --new wrote no mygame/$f"
done
rc=0
"$root/bin/gcs" --new mygame 2>"$tmp/new.err" || rc=$?
[ "$rc" = 2 ] && grep -q "exists already" "$tmp/new.err" ||
  fail "a second gcs --new mygame gave status $rc: $(cat "$tmp/new.err")"

step "busted in mygame/ against the installed gc.testing"
cd mygame
LUA_CPATH="$cmod/?.so;;" LD_DEBUG=files LD_DEBUG_OUTPUT=$tmp/ld \
  env "${busted_env[@]}" busted --output=TAP || fail "the template's spec does not pass"
grep -qs "file=$root/lib/gcs/libgc_lua.so " "$tmp"/ld.* ||
  fail "gc.testing did not load the installed $prefix/lib/gcs/libgc_lua.so"

step "the template's config serves its script"
sed 's/"port": 7681/"port": 0/; s/"0\.0\.0\.0"/"127.0.0.1"/' mygame.json >"$tmp/mygame.json"
start_gcs -C "$tmp/mygame.json" -w 1
stop_gcs
grep -q "application mygame started" "$tmp/gcs.log" || { cat "$tmp/gcs.log" >&2; fail "mygame did not start"; }
cd "$tmp"

step "uninstall (install_manifest.txt)"
DESTDIR=$dest cmake -DMANIFEST="$manifest" -P "$src/packaging/uninstall.cmake" >/dev/null
left=$(find "$dest" -type f)
[ -z "$left" ] || fail "left after uninstall: $left"
for d in lib/gcs include/game-carrier share/gcs "${cmod#"$root"/}/gc"; do
  [ ! -e "$root/$d" ] || fail "left after uninstall: $prefix/$d/"
done
echo "ok: installed, adapter built and served, Lua adapter found, template spec passed, uninstalled"
