#!/usr/bin/env bash
# bench/run.sh - `make bench`: gcs side by side with the servers users would
# pick instead, in one run, all driven by bench/loadgen.
#
#   QUICK=1 bench/run.sh      the short version (under 2 minutes)
#   BUILD=build               the CMake build directory (configured here with
#                             -DGC_BUILD_BENCH=ON; gcs is measured from it)
#   BENCH_PORT=19100          first of the 32 ports used (127.0.0.1 only)
#   BENCH_ONLY="gcs-native lws"   a subset of the servers (default: all)
#   BENCH_FAIR_ONLY=1         only the fairness rows (gcs-native, issue 13.12);
#                             the report goes to $BUILD/bench/RESULTS.md
#   BENCH_WORKERS_ONLY=1      only the rows with 1 and 2 worker loops (issue
#                             15); the report goes to $BUILD/bench/RESULTS.md
#   BENCH_QUIET=25            before each round of those rows, wait (30 s at
#                             most) until the rest of the machine uses under
#                             this % of a CPU (/proc/stat over 1 s); 0: no wait
#   BENCH_CLUSTER_ONLY=1      only the rows of issue 19 (publish through
#                             Redis against in-process; /metrics scraped on
#                             the echo path); the report goes to
#                             $BUILD/bench/RESULTS.md
#
# Servers: gcs + the native echo adapter, gcs + scripts/echo.lua, an lws
# echo, a Node 'ws' echo, Bun's and uWebSockets.js's echoes (uWebSockets
# inside, a JavaScript handler per message; npm packages) and a bare libuv
# raw-TCP echo; for the room
# broadcast gcs + bench/chat_native.c and gcs + scripts/chat.lua against
# Bun's and uWebSockets.js's topic publish (bench/peers/*_chat.js); for Lua
# game logic gcs + bench/logic.lua under the default time limit and under
# an instruction budget (the count hook's cost); for fairness gcs + the
# native echo with 50 echo clients alone and beside one flooder. Every
# server runs pinned to CPU 0 (taskset -c 0), the load generator to CPU 1,
# and every gcs among them with one worker loop (-w 1: the default, "auto",
# would run one per CPU), so that the figures compare with those taken
# before gcs had workers and with the one-thread peers.
# Workers (issue 15): gcs with -w 1 and -w 2, side by side: bench/logic.lua
# with "route": "query.room" and the clients in 20 rooms (loadgen --rooms),
# and bench/chat_native.c's room of 1,000 receivers (spread over the loops
# by the kernel's SO_REUSEPORT hash). -w 1 runs as above (server on CPU 0,
# loadgen on CPU 1); -w 2 runs the server on both CPUs and the load
# generator on both too (taskset -c 0,1 each): the machine has two cores,
# so the load generator's work comes out of the two loops' share.
# Workloads run server after server for each workload, so that the ratios
# compare figures taken seconds apart.
#
# Writes bench/RESULTS.md and bench/results.png (bench/report.js), and keeps
# the raw JSON lines in $BUILD/bench/results.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
PORT0=${BENCH_PORT:-19100}
ONLY=${BENCH_ONLY:-}
FAIR_ONLY=${BENCH_FAIR_ONLY:-}
[ "$FAIR_ONLY" = 0 ] && FAIR_ONLY=
[ -n "$FAIR_ONLY" ] && ONLY=gcs-native
WORKERS_ONLY=${BENCH_WORKERS_ONLY:-}
[ "$WORKERS_ONLY" = 0 ] && WORKERS_ONLY=
[ -n "$FAIR_ONLY" ] && [ -n "$WORKERS_ONLY" ] && die "BENCH_FAIR_ONLY and BENCH_WORKERS_ONLY: one at a time"
[ -n "$WORKERS_ONLY" ] && ONLY="logic-w1 logic-w2 chat-w1 chat-w2"
CLUSTER_ONLY=${BENCH_CLUSTER_ONLY:-}
[ "$CLUSTER_ONLY" = 0 ] && CLUSTER_ONLY=
[ -n "$CLUSTER_ONLY" ] && { [ -n "$FAIR_ONLY" ] || [ -n "$WORKERS_ONLY" ]; } &&
  die "BENCH_CLUSTER_ONLY and another BENCH_*_ONLY: one at a time"
[ -n "$CLUSTER_ONLY" ] && ONLY="publish metrics"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
T_START=$(date +%s)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---- what the benchmark needs ----------------------------------------------
missing=""
for p in libwebsockets-dev gnuplot-nox redis-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
  log "installing missing Debian packages:$missing"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if [ ! -f bench/node_modules/ws/package.json ] || [ ! -x bench/node_modules/.bin/bun ] ||
   [ ! -f bench/node_modules/@trufflesuite/uws-js-unofficial/package.json ]; then
  log "installing the JavaScript peers: 'ws', Bun, uWebSockets.js (npm ci in bench/)"
  npm ci --prefix bench --no-audit --no-fund --loglevel=error >/dev/null
fi

# ---- build -----------------------------------------------------------------
if [ -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DGC_BUILD_BENCH=ON >/dev/null
else
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_BUILD_TESTS=OFF \
    -DGC_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" >/dev/null || die "build failed (cmake --build $BUILD)"
BT=$(grep -E '^CMAKE_BUILD_TYPE:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
B=$(cd "$BUILD" && pwd)
for f in gcs libecho.so libgc_lua.so bench/loadgen bench/uv_echo bench/lws_echo \
         bench/libbench_chat.so bench/adapter_cost; do
  [ -e "$B/$f" ] || die "missing $B/$f after the build"
done

# ---- the plan ----------------------------------------------------------------
if [ -n "$QUICK" ]; then
  WARM=0.3 DUR=1 HS_DUR=1 IDLE_CONNS=10000 BC_DUR=1 REPEAT_ALL=1 REPEAT_PAIR=3 COST_REPS=3 COST_SEC=0.3
  ECHO_ROWS="32:100:16 1024:100:16 16384:100:16 32:1000:16"
  REPEAT_FAIR=1 FAIR_DUR=1
  REPEAT_WORKERS=3 WORKERS_DUR=1
else
  WARM=1 DUR=4 HS_DUR=3 IDLE_CONNS=10000 BC_DUR=4 REPEAT_ALL=3 REPEAT_PAIR=15 COST_REPS=11 COST_SEC=0.5
  ECHO_ROWS="32:1:16 32:100:16 32:1000:16 1024:1:16 1024:100:16 1024:1000:16 16384:100:16 32:100:1 1024:100:1"
  REPEAT_FAIR=5 FAIR_DUR=3
  REPEAT_WORKERS=9 WORKERS_DUR=3
fi
[ -n "$FAIR_ONLY" ] && ECHO_ROWS=""
[ -n "$WORKERS_ONLY" ] && ECHO_ROWS=""
[ -n "$CLUSTER_ONLY" ] && ECHO_ROWS=""
# Workers: logic.lua's clients (100, 32 B) in this many rooms, with this
# many messages in flight each: 64, not the 16 of the other rows, because
# with -w 2 the load generator's CPU comes out of the server's two cores,
# and at 64 it costs 0.25-0.3 us a message instead of 0.6-0.8 (the server
# 3.2 instead of 3.6): see bench/NOTES.md, "Worker loops".
WORKERS_ROOMS=20 WORKERS_WINDOW=64
# Fairness (issue 13.12): 50 echo clients, 32 B, 16 in flight, alone and
# beside one flooder (32 B and 64 KiB messages, sent without waiting).
FAIR_FLOODS="0 32 65536"

BC_RECEIVERS=1000 BC_WINDOW=8

# Descriptors: every connection is a descriptor in the server and another in
# the load generator (separate processes, each gets the hard limit).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -Sn)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE_CONNS + 100)) ]; then
  IDLE_CONNS=$((NOFILE - 100))
  log "fd limit $NOFILE: idle test lowered to $IDLE_CONNS connections"
fi

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
  PIN_SRV="taskset -c 0" PIN_CLI="taskset -c 1" PINNING="server on CPU 0, loadgen on CPU 1 (taskset)"
  PIN_BOTH="taskset -c 0,1"
  PINNING_W1="gcs -w 1 on CPU 0 (taskset -c 0), loadgen on CPU 1 (taskset -c 1)"
  PINNING_W2="gcs -w 2 on CPUs 0 and 1 (taskset -c 0,1), loadgen on CPUs 0 and 1 (taskset -c 0,1): they share both cores"
else
  PIN_SRV="" PIN_CLI="" PINNING="none (one CPU)" PIN_BOTH=""
  PINNING_W1="none (one CPU)" PINNING_W2="none (one CPU: two loops on one core)"
fi

WORK=$(mktemp -d /tmp/gcs-bench.XXXXXX)
RESULTS="$B/bench/results.jsonl"
: >"$RESULTS"
declare -A PID PORT CMD SPIN CPIN
SERVERS_ECHO="gcs-native gcs-lua lws node-ws bun uws uv-raw"
SERVERS_CHAT="chat-native chat-lua chat-bun chat-uws"
SERVERS_LOGIC="logic-lua logic-budget"
SERVERS_WORKERS="logic-w1 logic-w2 chat-w1 chat-w2"
# Handlers that wait (issue 17): echo.lua again, the echo with one
# gc.sleep(0) per message, and with one gc.redis.call("INCR") per message
# against a redis-server pinned beside the load generator; its peer, a Node
# 'ws' server whose handler awaits one INCR (bench/peers/ws_redis.js).
SERVERS_WAIT="wait-echo wait-sleep0 wait-redis node-redis"

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

cleanup() {
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
  for s in "${!PID[@]}"; do wait "${PID[$s]}" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcs_config() { # name port adapter-json app [more root keys]
  cat >"$WORK/$1.json" <<EOF
{"adapters":[$3],
 "vhosts":[{"ip":"127.0.0.1","port":$2,"protocol":"ws","app":"$4"}],${5:-}
 "logging":{"level":"ERR"}}
EOF
}

i=0
for s in $SERVERS_ECHO $SERVERS_CHAT $SERVERS_LOGIC $SERVERS_WORKERS $SERVERS_WAIT; do
  PORT[$s]=$((PORT0 + i)) SPIN[$s]=$PIN_SRV CPIN[$s]=$PIN_CLI
  i=$((i + 1))
done
REDIS_PORT=$((PORT0 + i))
# After it: the wss section's three ports, then issue 19's seven.
PORT_I_WSS=$((i + 1)) PORT_I_CLUSTER=$((i + 4))
SPIN[logic-w2]=$PIN_BOTH CPIN[logic-w2]=$PIN_BOTH
SPIN[chat-w2]=$PIN_BOTH CPIN[chat-w2]=$PIN_BOTH
gcs_config gcs-native "${PORT[gcs-native]}" \
  "{\"type\":\"native\",\"dir\":\"$B\",\"name\":\"echo\",\"apps\":[{\"name\":\"echo\",\"type_name\":\"echo\",\"file_name\":\"echo\"}]}" echo
gcs_config gcs-lua "${PORT[gcs-lua]}" \
  "{\"type\":\"lua\",\"apps\":[{\"name\":\"echo\",\"file_name\":\"$ROOT/scripts/echo.lua\"}]}" echo
CHAT_NATIVE_APP="{\"type\":\"native\",\"dir\":\"$B/bench\",\"name\":\"bench_chat\",\"apps\":[{\"name\":\"chat\",\"type_name\":\"chat\",\"file_name\":\"chat\"}]}"
gcs_config chat-native "${PORT[chat-native]}" "$CHAT_NATIVE_APP" chat
gcs_config chat-w1 "${PORT[chat-w1]}" "$CHAT_NATIVE_APP" chat
gcs_config chat-w2 "${PORT[chat-w2]}" "$CHAT_NATIVE_APP" chat
gcs_config chat-lua "${PORT[chat-lua]}" \
  "{\"type\":\"lua\",\"apps\":[{\"name\":\"chat\",\"file_name\":\"$ROOT/scripts/chat.lua\"}]}" chat
LOGIC_APP="{\"type\":\"lua\",\"apps\":[{\"name\":\"logic\",\"file_name\":\"$ROOT/bench/logic.lua\"}]}"
gcs_config logic-lua "${PORT[logic-lua]}" "$LOGIC_APP" logic
gcs_config logic-budget "${PORT[logic-budget]}" "$LOGIC_APP" logic \
  '"lua":{"instruction_budget":100000000},'
# A state of logic.lua per worker, the clients placed by ?room=.
LOGIC_ROUTED="{\"type\":\"lua\",\"apps\":[{\"name\":\"logic\",\"file_name\":\"$ROOT/bench/logic.lua\",\"route\":\"query.room\"}]}"
gcs_config logic-w1 "${PORT[logic-w1]}" "$LOGIC_ROUTED" logic
gcs_config logic-w2 "${PORT[logic-w2]}" "$LOGIC_ROUTED" logic
gcs_config wait-echo "${PORT[wait-echo]}" \
  "{\"type\":\"lua\",\"apps\":[{\"name\":\"echo\",\"file_name\":\"$ROOT/scripts/echo.lua\"}]}" echo
gcs_config wait-sleep0 "${PORT[wait-sleep0]}" \
  "{\"type\":\"lua\",\"apps\":[{\"name\":\"echo\",\"file_name\":\"$ROOT/bench/wait_sleep.lua\"}]}" echo
gcs_config wait-redis "${PORT[wait-redis]}" \
  "{\"type\":\"lua\",\"apps\":[{\"name\":\"echo\",\"file_name\":\"$ROOT/bench/redis_incr.lua\"}]}" echo \
  "\"redis\":{\"url\":\"redis://127.0.0.1:$REDIS_PORT/0\"},"
CMD[wait-echo]="$B/gcs -w 1 -C $WORK/wait-echo.json"
CMD[wait-sleep0]="$B/gcs -w 1 -C $WORK/wait-sleep0.json"
CMD[wait-redis]="$B/gcs -w 1 -C $WORK/wait-redis.json"
CMD[node-redis]="node $ROOT/bench/peers/ws_redis.js ${PORT[node-redis]} $REDIS_PORT 127.0.0.1"
# -w 1: one loop, as gcs ran before it had workers (the default is one per CPU).
CMD[gcs-native]="$B/gcs -w 1 -C $WORK/gcs-native.json"
CMD[gcs-lua]="$B/gcs -w 1 -C $WORK/gcs-lua.json"
CMD[lws]="$B/bench/lws_echo ${PORT[lws]} 127.0.0.1"
CMD[node-ws]="node $ROOT/bench/peers/ws_echo.js ${PORT[node-ws]} 127.0.0.1"
CMD[bun]="$ROOT/bench/node_modules/.bin/bun $ROOT/bench/peers/bun_echo.js ${PORT[bun]} 127.0.0.1"
CMD[uws]="node $ROOT/bench/peers/uws_echo.js ${PORT[uws]} 127.0.0.1"
CMD[uv-raw]="$B/bench/uv_echo ${PORT[uv-raw]} 127.0.0.1"
CMD[chat-native]="$B/gcs -w 1 -C $WORK/chat-native.json"
CMD[chat-lua]="$B/gcs -w 1 -C $WORK/chat-lua.json"
CMD[chat-bun]="$ROOT/bench/node_modules/.bin/bun $ROOT/bench/peers/bun_chat.js ${PORT[chat-bun]} 127.0.0.1"
CMD[chat-uws]="node $ROOT/bench/peers/uws_chat.js ${PORT[chat-uws]} 127.0.0.1"
CMD[logic-lua]="$B/gcs -w 1 -C $WORK/logic-lua.json"
CMD[logic-budget]="$B/gcs -w 1 -C $WORK/logic-budget.json"
CMD[logic-w1]="$B/gcs -w 1 -C $WORK/logic-w1.json"
CMD[logic-w2]="$B/gcs -w 2 -C $WORK/logic-w2.json"
CMD[chat-w1]="$B/gcs -w 1 -C $WORK/chat-w1.json"
CMD[chat-w2]="$B/gcs -w 2 -C $WORK/chat-w2.json"

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

start_server() { # name
  local s=$1 p=${PORT[$1]}
  port_busy "$p" && die "port $p (for $s) is in use: set BENCH_PORT"
  # shellcheck disable=SC2086
  ${SPIN[$s]} ${CMD[$s]} >"$WORK/$s.log" 2>&1 &
  PID[$s]=$!
  for _ in $(seq 100); do
    port_busy "$p" && return 0
    kill -0 "${PID[$s]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/$s.log" >&2
  die "$s did not start listening on $p"
}

# run LABEL SERVER LOADGEN-ARGS...: one loadgen run, one JSON line kept.
run() {
  local label=$1 s=$2
  shift 2
  local proto=ws line
  [ "$s" = uv-raw ] && proto=raw
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    line="{\"label\":\"$label\",\"error\":\"server not running\"}"
  else
    # shellcheck disable=SC2086
    line=$(timeout 120 ${CPIN[$s]} "$B/bench/loadgen" --proto "$proto" --port "${PORT[$s]}" \
      --pid "${PID[$s]}" --label "$label" --setup-timeout 30 "$@" 2>>"$WORK/loadgen.err" |
      tail -n 1) || true
    [ -n "$line" ] || line="{\"label\":\"$label\",\"error\":\"loadgen failed\"}"
  fi
  printf '{"server":"%s",%s\n' "$s" "${line#\{}" >>"$RESULTS"
  printf '  %-12s %s\n' "$s" "$(summary "$line")" >&2
}

summary() {
  local l=$1 v
  for k in msgs_per_s deliveries_per_s handshakes_per_s rss_per_conn_b lat_p50_us lat_p99_us \
    flood_mb_per_s server_cpu_pct server_cpu_s_per_mmsg server_threads_cpu_pct others_cpu_pct \
    errors error; do
    v=$(printf '%s' "$l" | grep -o "\"$k\":\(\[[^]]*\]\|[^,}]*\)" | head -1) || true
    [ -n "$v" ] && printf '%s ' "$v"
  done
}

# ---- machine state -------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# (ps itself is left out: a process a few ms old reads as busy.)
BUSY=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 20 && $2 != "ps" {printf "%s(%s%%) ", $2, $1}')
[ -n "$BUSY" ] && log "warning: other busy processes: $BUSY(figures will be noisy)"

# ---- servers -----------------------------------------------------------------
ECHO_LIST="" CHAT_LIST="" LOGIC_LIST="" WORKERS_LIST="" WAIT_LIST=""
for s in $SERVERS_ECHO; do wanted "$s" && ECHO_LIST="$ECHO_LIST $s"; done
for s in $SERVERS_CHAT; do wanted "$s" && CHAT_LIST="$CHAT_LIST $s"; done
for s in $SERVERS_LOGIC; do wanted "$s" && LOGIC_LIST="$LOGIC_LIST $s"; done
for s in $SERVERS_WORKERS; do wanted "$s" && WORKERS_LIST="$WORKERS_LIST $s"; done
for s in $SERVERS_WAIT; do wanted "$s" && WAIT_LIST="$WAIT_LIST $s"; done
[ -n "$FAIR_ONLY" ] && CHAT_LIST="" LOGIC_LIST="" WORKERS_LIST="" WAIT_LIST=""
[ -n "$WORKERS_ONLY" ] && ECHO_LIST="" WAIT_LIST=""
if [[ " $WAIT_LIST " == *" wait-redis "* || " $WAIT_LIST " == *" node-redis "* ]]; then
  if ! command -v redis-server >/dev/null; then
    log "no redis-server (Debian: redis-server): the wait-redis and node-redis rows are skipped"
    WAIT_LIST=${WAIT_LIST/ wait-redis/}
    WAIT_LIST=${WAIT_LIST/ node-redis/}
  else
    port_busy "$REDIS_PORT" && die "port $REDIS_PORT (for redis-server) is in use: set BENCH_PORT"
    # shellcheck disable=SC2086
    $PIN_CLI redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    PID[redis-wait]=$! # not "redis": the publish rows start one of their own
    for _ in $(seq 100); do port_busy "$REDIS_PORT" && break; sleep 0.05; done
    port_busy "$REDIS_PORT" || die "redis-server did not start on $REDIS_PORT"
  fi
fi
for s in $ECHO_LIST $CHAT_LIST $LOGIC_LIST $WORKERS_LIST $WAIT_LIST; do start_server "$s"; done
log "servers up:$ECHO_LIST$CHAT_LIST$LOGIC_LIST$WORKERS_LIST$WAIT_LIST ($PINNING)"
[ -n "$WORKERS_LIST" ] && log "workers rows: -w 1: $PINNING_W1; -w 2: $PINNING_W2"

# ---- workloads -------------------------------------------------------------------
# The target row (32 B x 100, 16 in flight) runs several times, the servers
# alternating, and the report takes each server's median: one 4 s sample
# moves by up to 20 % on this kind of machine. The gcs pair of the Lua
# target runs REPEAT_PAIR times (the share is the median of the per-round
# ratios), the other servers REPEAT_ALL times. The other rows that issue
# 20's targets name (1 KiB and 16 KiB x 100, and x 1,000) run REPEAT_ALL
# times each, alternating, as the issue measured them; libwebsockets and
# Node ws, far behind and not in those targets, once.
TARGET_ROWS=" 1024:100:16 16384:100:16 32:1000:16 1024:1000:16 "
for row in $ECHO_ROWS; do
  IFS=: read -r size conns window <<<"$row"
  label="echo ${size}B x${conns} w${window}"
  reps=1
  [ "$row" = 32:100:16 ] && reps=$REPEAT_PAIR
  [[ "$TARGET_ROWS" == *" $row "* ]] && reps=$REPEAT_ALL
  for rep in $(seq "$reps"); do
    if [ "$reps" -gt 1 ]; then log "$label (run $rep of $reps)"; else log "$label"; fi
    # Even rounds go the other way round, so that the machine drifting
    # within a round does not always fall on the same server.
    order=$ECHO_LIST
    [ $((rep % 2)) -eq 0 ] && order=$(printf '%s\n' $ECHO_LIST | tac | tr '\n' ' ')
    for s in $order; do
      [ "$rep" -gt "$REPEAT_ALL" ] && [ "$s" != gcs-native ] && [ "$s" != gcs-lua ] && continue
      [ "$rep" -gt 1 ] && [ "$row" != 32:100:16 ] && { [ "$s" = lws ] || [ "$s" = node-ws ]; } && continue
      run "$label" "$s" --mode echo --size "$size" --conns "$conns" --window "$window" \
        --warmup "$WARM" --duration "$DUR" --concurrency 128
    done
  done
done

# Fairness: one client flooding at full speed must not take the server from
# the others. gcs + native echo, 50 echo connections measured as above,
# alone and beside one flooder (bench/loadgen --flood-conns: messages sent
# without waiting for echoes, the echoes read and discarded); the three runs
# alternate, every other round in reverse order, and the report compares
# each flooded run's p50 with the run alone of the same round.
fair_label() { case $1 in 0) echo "fair alone" ;; 65536) echo "fair flood 64KiB" ;; *) echo "fair flood ${1}B" ;; esac; }
if wanted gcs-native; then
  for rep in $(seq "$REPEAT_FAIR"); do
    log "fairness: 32 B x50 w16 alone, beside a 32 B and a 64 KiB flooder (run $rep of $REPEAT_FAIR)"
    order=$FAIR_FLOODS
    [ $((rep % 2)) -eq 0 ] && order=$(printf '%s\n' $FAIR_FLOODS | tac | tr '\n' ' ')
    for f in $order; do
      flood=()
      [ "$f" != 0 ] && flood=(--flood-conns 1 --flood-size "$f")
      run "$(fair_label "$f")" gcs-native --mode echo --size 32 --conns 50 --window 16 \
        --warmup "$WARM" --duration "$FAIR_DUR" --concurrency 128 "${flood[@]}"
    done
  done
fi

# The adapters alone, no sockets (bench/adapter_cost.c): what the Lua path
# costs per message, free of the kernel's share and of most of the noise,
# with hot caches and with 64 KiB of other memory touched before each read
# (as the network path does). Pinned like the servers, alternating.
cost_run() { # server evict-KiB library type file
  local line
  # shellcheck disable=SC2086
  line=$(timeout 60 $PIN_SRV "$B/bench/adapter_cost" "$3" "$4" "$5" --size 32 --conns 100 \
    --window 16 --evict "$2" --seconds "$COST_SEC" 2>>"$WORK/adapter_cost.err" | tail -n 1) || true
  [ -n "$line" ] || line='{"error":"adapter_cost failed"}'
  printf '{"server":"%s","label":"adapter cost","evict":%s,%s\n' "$1" "$2" "${line#\{}" >>"$RESULTS"
  printf '  %-12s evict %3s KiB %s\n' "$1" "$2" \
    "$(printf '%s' "$line" | grep -o '"ns_per_msg":[^,}]*\|"error":[^}]*')" >&2
}
if [ -z "$FAIR_ONLY" ] && { wanted gcs-native || wanted gcs-lua; }; then
  for rep in $(seq "$COST_REPS"); do
    log "adapter cost, no sockets: 32 B, 100 connections x 16 (run $rep of $COST_REPS)"
    for ev in 0 64; do
      cost_run gcs-native "$ev" "$B/libecho.so" echo ""
      cost_run gcs-lua "$ev" "$B/libgc_lua.so" lua "$ROOT/scripts/echo.lua"
    done
  done
fi

[ -n "$FAIR_ONLY" ] && ECHO_LIST=""
[ -n "$ECHO_LIST" ] && log "handshakes (32 at a time, reset after the 101; uv-raw: TCP connects)"
for s in $ECHO_LIST; do
  run "handshake" "$s" --mode handshake --concurrency 32 --duration "$HS_DUR"
done

[ -n "$ECHO_LIST" ] && log "idle: $IDLE_CONNS connections, one echo each, then held (each server started afresh)"
for s in $ECHO_LIST; do
  # A fresh process: memory the rows above grew and freed (a garbage
  # collector's heap above all) would hold the idle connections unseen.
  kill "${PID[$s]}" 2>/dev/null || true
  wait "${PID[$s]}" 2>/dev/null || true
  for _ in $(seq 100); do port_busy "${PORT[$s]}" || break; sleep 0.05; done
  start_server "$s"
  sleep 1 # settled: what a runtime does at start is not the connections'
  run "idle" "$s" --mode idle --conns "$IDLE_CONNS" --concurrency 128 --size 32
done

[ -n "$CHAT_LIST" ] && log "room broadcast: 1 sender -> $BC_RECEIVERS receivers, 32 B, $BC_WINDOW in flight"
# Twice: the receivers reading through io_uring (the client keeps up with
# the servers) and with a read() each (the client is the bound; the row's
# figures before 2026-12-03). Which one changes the servers' cost too
# (bench/NOTES.md): both are shown.
for s in $CHAT_LIST; do
  run "broadcast" "$s" --mode broadcast --receivers "$BC_RECEIVERS" --window "$BC_WINDOW" \
    --size 32 --warmup "$WARM" --duration "$BC_DUR" --concurrency 128
  run "broadcast libuv client" "$s" --mode broadcast --receivers "$BC_RECEIVERS" --window "$BC_WINDOW" \
    --size 32 --warmup "$WARM" --duration "$BC_DUR" --concurrency 128 --rx-libuv
done

[ -n "$LOGIC_LIST" ] && log "Lua game logic (bench/logic.lua): 32 B x100 w16, time limit vs instruction budget"
for s in $LOGIC_LIST; do
  run "logic" "$s" --mode echo --size 32 --conns 100 --window 16 \
    --warmup "$WARM" --duration "$DUR" --concurrency 128
done

# Handlers that wait: the same echo workload, the three alternating,
# every other round in reverse order (the report takes each one's median).
if [ -n "$WAIT_LIST" ]; then
  for rep in $(seq "$REPEAT_ALL"); do
    log "waiting handlers: echo.lua, gc.sleep(0), gc.redis.call INCR per message, Node + INCR, 32 B x100 w16 (run $rep of $REPEAT_ALL)"
    order=$WAIT_LIST
    [ $((rep % 2)) -eq 0 ] && order=$(printf '%s\n' $WAIT_LIST | tac | tr '\n' ' ')
    for s in $order; do
      run "wait" "$s" --mode echo --size 32 --conns 100 --window 16 \
        --warmup "$WARM" --duration "$DUR" --concurrency 128
    done
  done
fi

# The machine's busy CPU over one second, in % of one CPU (/proc/stat).
machine_busy() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat)
  echo $(((b - a) * 100 / $(getconf CLK_TCK)))
}
# Waits until the rest of the machine is under BENCH_QUIET % of a CPU: -w 2
# needs both cores, so a busy neighbour costs it more than it costs -w 1.
wait_quiet() {
  local max=${BENCH_QUIET:-25} busy t=0
  [ "$max" = 0 ] && return 0
  while busy=$(machine_busy) && [ "$busy" -ge "$max" ]; do
    t=$((t + 1))
    if [ "$t" -ge 30 ]; then
      log "the rest of the machine still uses $busy % of a CPU after 30 s: running anyway"
      return 0
    fi
  done
  [ "$t" -gt 0 ] && log "waited $t s for the machine to calm down (now $busy % of a CPU busy)"
  return 0
}
# Workers (issue 15): the same workload on gcs -w 1 and on gcs -w 2, the
# two alternating, every other round in reverse order; the report takes
# the median of the per-round ratios. Lua game logic: a state per worker
# ("route": "query.room"), 100 clients in WORKERS_ROOMS rooms (?room=i mod
# R), so that each loop runs its own rooms. Room broadcast: chat_native.c,
# 1,000 receivers and the sender wherever the kernel's SO_REUSEPORT hash
# put them; each broadcast crosses to the other loop in one mail.
if [ -n "$WORKERS_LIST" ]; then
  for rep in $(seq "$REPEAT_WORKERS"); do
    wait_quiet
    order="1 2"
    [ $((rep % 2)) -eq 0 ] && order="2 1"
    log "workers: logic.lua routed by room ($WORKERS_ROOMS rooms), 32 B x100 w$WORKERS_WINDOW, -w 1 and -w 2 (run $rep of $REPEAT_WORKERS)"
    for w in $order; do
      wanted "logic-w$w" || continue
      run "workers logic" "logic-w$w" --mode echo --rooms "$WORKERS_ROOMS" --size 32 --conns 100 \
        --window "$WORKERS_WINDOW" --warmup "$WARM" --duration "$WORKERS_DUR" --concurrency 128
    done
    log "workers: room broadcast (chat_native.c), 1 sender -> $BC_RECEIVERS receivers, -w 1 and -w 2 (run $rep of $REPEAT_WORKERS)"
    for w in $order; do
      wanted "chat-w$w" || continue
      run "workers broadcast" "chat-w$w" --mode broadcast --receivers "$BC_RECEIVERS" \
        --window "$BC_WINDOW" --size 32 --warmup "$WARM" --duration "$WORKERS_DUR" --concurrency 128
    done
  done
fi

# ---- wss (issue 16) ------------------------------------------------------------
# gcs + the native echo adapter on a "protocol": "wss" vhost, lws_echo with
# its TLS options, and Node https + ws (bench/peers/wss_echo.js), all with
# one RSA-2048 certificate made here by openssl; loadgen --tls (OpenSSL
# memory BIOs, no verification, a full handshake per connection). Rows:
# echo 32 B and 1 KiB x100 w16 (alternating, REPEAT_WSS rounds), TLS
# handshakes/s (connect + handshake + upgrade), RSS per idle connection.
# The raw lines go to $B/bench/wss.jsonl; bench/wss_report.js appends the
# table to RESULTS.md.
SERVERS_WSS="gcs-wss lws-wss node-wss"
WSS_LIST=""
if [ -z "$FAIR_ONLY" ] && [ -z "$WORKERS_ONLY" ]; then
  for s in $SERVERS_WSS; do wanted "$s" && WSS_LIST="$WSS_LIST $s"; done
fi
WSS_RESULTS="$B/bench/wss.jsonl"
: >"$WSS_RESULTS"
if [ -n "$WSS_LIST" ]; then
  REPEAT_WSS=3 WSS_IDLE=$IDLE_CONNS
  [ -n "$QUICK" ] && REPEAT_WSS=1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/wss.key" -out "$WORK/wss.cert" \
    -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null ||
    die "openssl could not make the benchmark's certificate"
  i=$PORT_I_WSS
  for s in $SERVERS_WSS; do
    PORT[$s]=$((PORT0 + i)) SPIN[$s]=$PIN_SRV CPIN[$s]=$PIN_CLI
    i=$((i + 1))
  done
  cat >"$WORK/gcs-wss.json" <<EOF
{"adapters":[{"type":"native","dir":"$B","name":"echo","apps":[{"name":"echo","type_name":"echo","file_name":"echo"}]}],
 "vhosts":[{"ip":"127.0.0.1","port":${PORT[gcs-wss]},"protocol":"wss","app":"echo"}],
 "ssl_keys_path":"$WORK/wss",
 "logging":{"level":"ERR"}}
EOF
  CMD[gcs-wss]="$B/gcs -w 1 -C $WORK/gcs-wss.json"
  CMD[lws-wss]="$B/bench/lws_echo ${PORT[lws-wss]} 127.0.0.1 $WORK/wss.cert $WORK/wss.key"
  CMD[node-wss]="node $ROOT/bench/peers/wss_echo.js ${PORT[node-wss]} 127.0.0.1 $WORK/wss.cert $WORK/wss.key"
  for s in $WSS_LIST; do start_server "$s"; done
  log "wss servers up:$WSS_LIST ($PINNING)"
  for rep in $(seq "$REPEAT_WSS"); do
    order=$WSS_LIST
    [ $((rep % 2)) -eq 0 ] && order=$(printf '%s\n' $WSS_LIST | tac | tr '\n' ' ')
    for size in 32 1024; do
      log "wss echo ${size}B x100 w16 (run $rep of $REPEAT_WSS)"
      for s in $order; do
        RESULTS=$WSS_RESULTS run "wss echo ${size}B x100 w16" "$s" --tls --mode echo --size "$size" \
          --conns 100 --window 16 --warmup "$WARM" --duration "$DUR" --concurrency 128
      done
    done
    log "wss handshakes (32 at a time: connect, TLS handshake, upgrade, reset; run $rep of $REPEAT_WSS)"
    for s in $order; do
      RESULTS=$WSS_RESULTS run "wss handshake" "$s" --tls --mode handshake --concurrency 32 --duration "$HS_DUR"
    done
  done
  log "wss idle: $WSS_IDLE connections, one echo each, then held"
  for s in $WSS_LIST; do
    RESULTS=$WSS_RESULTS run "wss idle" "$s" --tls --mode idle --conns "$WSS_IDLE" --concurrency 128 --size 32
  done
  for s in $WSS_LIST; do # idle from here on, but not in the rows below
    kill "${PID[$s]}" 2>/dev/null || true
    wait "${PID[$s]}" 2>/dev/null || true
    unset "PID[$s]"
  done
fi

# ---- issue 19: publish across hosts; /metrics on the echo path ----------------
# Publish: bench/pubsub.lua on gcs -w 1. "pub-redis": bench/publish.js's
# publishers on one gcs, its subscribers on another, both with "redis" to
# one redis-server (gc.publish -> PUBLISH -> each host's PSUBSCRIBE -> the
# subscribers' host broadcasts to them); "pub-local": one gcs without
# "redis", publishers and subscribers on it (gc.publish stays in the
# process). The server side (two gcs and redis-server, or one gcs) on CPU 0,
# the load generator on CPU 1: the ratio is what crossing Redis costs the
# same core. /metrics: gcs + the native echo (-w 1, CPU 0) with its admin
# listener off, and a second one with it on, scraped every 100 ms by
# bench/scrape.js (CPU 1) during each of its runs; bench/loadgen echo 32 B
# x100 w16 on CPU 1. Both pairs alternate, every other round in reverse
# order, each round after wait_quiet (BENCH_QUIET); bench/cluster_report.js
# takes medians and per-round ratios.
CLUSTER_JSONL="$B/bench/cluster.jsonl"
: >"$CLUSTER_JSONL"
if [ -n "$QUICK" ]; then
  PUB_ROUNDS=3 PUB_DUR=1 MET_ROUNDS=3 MET_DUR=1
else
  PUB_ROUNDS=7 PUB_DUR=3 MET_ROUNDS=9 MET_DUR=3
fi
PUB_PUBS=4 PUB_SUBS=2 PUB_WINDOW=16 PUB_SIZE=64 SCRAPE_MS=100
i=$PORT_I_CLUSTER
for s in redis pub-a pub-b pub-local echo-admin-off echo-admin-on; do
  PORT[$s]=$((PORT0 + i)) SPIN[$s]=$PIN_SRV CPIN[$s]=$PIN_CLI
  i=$((i + 1))
done
ADMIN_PORT=$((PORT0 + i))

pub_config() { # name port [redis port]
  local redis=""
  [ -n "${3:-}" ] && redis="\"redis\":{\"url\":\"redis://127.0.0.1:$3/0\"},"
  cat >"$WORK/$1.json" <<EOC
{"adapters":[{"type":"lua","apps":[{"name":"pubsub","file_name":"$ROOT/bench/pubsub.lua"}]}],
 "vhosts":[{"ip":"127.0.0.1","port":$2,"protocol":"ws","app":"pubsub"}],$redis
 "logging":{"level":"NORMAL"}}
EOC
}

# Waits (10 s at most) until gcs 's' logged that it is subscribed on Redis.
wait_redis() {
  for _ in $(seq 200); do
    grep -q 'redis .*: connected: channels go through it' "$WORK/$1.log" && return 0
    sleep 0.05
  done
  cat "$WORK/$1.log" >&2
  die "$1 did not connect to Redis"
}

pub_run() { # server pub-port sub-port pids
  local s=$1 line
  # shellcheck disable=SC2086
  line=$(timeout 120 $PIN_CLI node "$ROOT/bench/publish.js" --pub-port "$2" --sub-port "$3" \
    --pubs "$PUB_PUBS" --subs "$PUB_SUBS" --window "$PUB_WINDOW" --size "$PUB_SIZE" \
    --warmup "$WARM" --duration "$PUB_DUR" --label publish --pids "$4" \
    2>>"$WORK/publish.err" | tail -n 1) || true
  [ -n "$line" ] || line='{"label":"publish","error":"publish.js failed"}'
  printf '{"server":"%s",%s\n' "$s" "${line#\{}" >>"$CLUSTER_JSONL"
  printf '  %-14s %s\n' "$s" "$(summary "$line")" >&2
}

if wanted publish; then
  cat >"$WORK/redis.conf" <<EOC
port ${PORT[redis]}
bind 127.0.0.1
save ""
appendonly no
dir $WORK
EOC
  CMD[redis]="redis-server $WORK/redis.conf"
  pub_config pub-a "${PORT[pub-a]}" "${PORT[redis]}"
  pub_config pub-b "${PORT[pub-b]}" "${PORT[redis]}"
  pub_config pub-local "${PORT[pub-local]}"
  for s in pub-a pub-b pub-local; do CMD[$s]="$B/gcs -w 1 -C $WORK/$s.json"; done
  for s in redis pub-a pub-b pub-local; do start_server "$s"; done
  wait_redis pub-a
  wait_redis pub-b
  log "publish: $PUB_PUBS publishers x $PUB_WINDOW in flight -> $PUB_SUBS subscribers, $PUB_SIZE B;" \
    "through Redis (2 gcs + redis-server) and in-process (1 gcs), server side on CPU 0"
  for rep in $(seq "$PUB_ROUNDS"); do
    wait_quiet
    log "publish: through Redis and in-process (run $rep of $PUB_ROUNDS)"
    order="redis local"
    [ $((rep % 2)) -eq 0 ] && order="local redis"
    for w in $order; do
      if [ "$w" = redis ]; then
        pub_run pub-redis "${PORT[pub-a]}" "${PORT[pub-b]}" \
          "gcs_a=${PID[pub-a]},gcs_b=${PID[pub-b]},redis=${PID[redis]}"
      else
        pub_run pub-local "${PORT[pub-local]}" "${PORT[pub-local]}" "gcs=${PID[pub-local]}"
      fi
    done
  done
  for s in pub-a pub-b pub-local redis; do
    kill "${PID[$s]}" 2>/dev/null || true
    wait "${PID[$s]}" 2>/dev/null || true
    unset "PID[$s]"
  done
fi

if wanted metrics; then
  ECHO_APP="{\"type\":\"native\",\"dir\":\"$B\",\"name\":\"echo\",\"apps\":[{\"name\":\"echo\",\"type_name\":\"echo\",\"file_name\":\"echo\"}]}"
  gcs_config echo-admin-off "${PORT[echo-admin-off]}" "$ECHO_APP" echo
  gcs_config echo-admin-on "${PORT[echo-admin-on]}" "$ECHO_APP" echo \
    "\"admin\":{\"ip\":\"127.0.0.1\",\"port\":$ADMIN_PORT},"
  for s in echo-admin-off echo-admin-on; do CMD[$s]="$B/gcs -w 1 -C $WORK/$s.json"; done
  for s in echo-admin-off echo-admin-on; do start_server "$s"; done
  log "metrics: echo 32 B x100 w16, admin off and admin on scraped every $SCRAPE_MS ms, server on CPU 0"
  for rep in $(seq "$MET_ROUNDS"); do
    wait_quiet
    log "metrics: admin off and on (run $rep of $MET_ROUNDS)"
    order="off on"
    [ $((rep % 2)) -eq 0 ] && order="on off"
    for w in $order; do
      if [ "$w" = on ]; then
        # shellcheck disable=SC2086
        $PIN_CLI node "$ROOT/bench/scrape.js" "$ADMIN_PORT" "$SCRAPE_MS" >"$WORK/scrape.out" &
        PID[scraper]=$!
      fi
      RESULTS="$CLUSTER_JSONL" run "metrics echo 32B x100 w16" "echo-admin-$w" --mode echo --size 32 \
        --conns 100 --window 16 --warmup "$WARM" --duration "$MET_DUR" --concurrency 128
      if [ "$w" = on ]; then
        kill -TERM "${PID[scraper]}" 2>/dev/null || true
        wait "${PID[scraper]}" 2>/dev/null || true
        unset 'PID[scraper]'
        line=$(tail -n 1 "$WORK/scrape.out")
        [ -n "$line" ] || line='{"error":"scrape.js failed"}'
        printf '{"server":"scraper",%s\n' "${line#\{}" >>"$CLUSTER_JSONL"
        log "  scraper: $line"
      fi
    done
  done
fi

# ---- report --------------------------------------------------------------------
T_END=$(date +%s)
CMDLINE="make bench${QUICK:+ QUICK=1}"
OUT=bench
if [ -n "$FAIR_ONLY" ]; then
  OUT=$B/bench CMDLINE="BENCH_FAIR_ONLY=1 $CMDLINE"
elif [ -n "$WORKERS_ONLY" ]; then
  OUT=$B/bench CMDLINE="BENCH_WORKERS_ONLY=1 $CMDLINE"
elif [ -n "$CLUSTER_ONLY" ]; then
  OUT=$B/bench CMDLINE="BENCH_CLUSTER_ONLY=1 $CMDLINE"
fi
[ -z "$CLUSTER_ONLY" ] && node bench/report.js --results "$RESULTS" --out "$OUT" \
  --cmd "$CMDLINE" --build-type "${BT:-?}" --pinning "$PINNING" \
  --load-before "$LOAD_BEFORE" --busy "${BUSY:-none}" \
  --elapsed "$((T_END - T_START))" --quick "${QUICK:+1}" \
  --pinning-w1 "$PINNING_W1" --pinning-w2 "$PINNING_W2" --workers-rooms "$WORKERS_ROOMS" \
  --workers-window "$WORKERS_WINDOW" \
  --idle-conns "$IDLE_CONNS" --lws "$(pkg-config --modversion libwebsockets 2>/dev/null || echo '?')" \
  --ws "$(node -p "require('$ROOT/bench/node_modules/ws/package.json').version")" \
  --node "$(node --version)" --bun "$("$ROOT/bench/node_modules/.bin/bun" --version)" \
  --uws "$(node -p "require('$ROOT/bench/node_modules/@trufflesuite/uws-js-unofficial/package.json').version")" \
  --uv "$(pkg-config --modversion libuv 2>/dev/null || echo '?')"
[ -s "$WSS_RESULTS" ] && node bench/wss_report.js "$WSS_RESULTS" >>"$OUT/RESULTS.md"
# The rows of issue 19: a section of their own (before the analysis copied
# from NOTES.md), or the whole report with BENCH_CLUSTER_ONLY=1.
if [ -s "$CLUSTER_JSONL" ]; then
  node bench/cluster_report.js --results "$CLUSTER_JSONL" --out "$OUT/RESULTS.md" \
    ${CLUSTER_ONLY:+--standalone} --quiet "${BENCH_QUIET:-25}" --cmd "$CMDLINE" --build-type "${BT:-?}" \
    --load-before "$LOAD_BEFORE" --busy "${BUSY:-none}" --elapsed "$((T_END - T_START))" \
    --redis "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')" --node "$(node --version)"
fi
if [ -n "$CLUSTER_ONLY" ]; then
  log "done in $((T_END - T_START)) s: $OUT/RESULTS.md"
else
  log "done in $((T_END - T_START)) s: $OUT/RESULTS.md, $OUT/results.png"
fi
