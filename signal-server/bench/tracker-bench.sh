#!/usr/bin/env bash
# Tracker load figures on this machine, loader and server on 127.0.0.1:
#  1. announces/s with realistic announces (5 offers of ~700-byte SDP) over
#     many connections, plus the server's CPU time per announce;
#  2. the server's RSS per idle connection (10,000 by default).
# Usage: signal-server/bench/tracker-bench.sh [idle_connections]
# Env: PORT (18181), SECONDS_PER_RUN (20), RUNS ("200:20 1000:100" = connections:swarms).
set -euo pipefail
cd "$(dirname "$0")/../.."
IDLE=${1:-10000}
PORT=${PORT:-18181}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
RUNS=${RUNS:-"200:20 1000:100"}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)"

cargo build --release -q -p signal-server --bin signal-server --example loadgen
BIN=target/release/signal-server
LOAD=target/release/examples/loadgen
TICK=$(getconf CLK_TCK)
work=$(mktemp -d)
mkdir -p "$work/library"
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_server() {
  # The loader multiplexes far more announces per socket than a browser
  # sends (one per 2 min per torrent), so the per-connection rate limit is
  # lifted here, and so is the per-address socket cap (every loader socket
  # comes from 127.0.0.1); every other limit keeps its default. The loader answers
  # every offer it is relayed, as a browser does, so answers are routed too.
  RUST_LOG=warn "$BIN" --listen "127.0.0.1:$PORT" --library "$work/library" \
    --web-dir "$work" --messages-per-second 1000000 --message-burst 1000000 \
    --max-connections-per-address 0 &
  SERVER=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null && return
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }

echo "== announces/s (${SECONDS_PER_RUN}s per run), load average: $(cut -d" " -f1-3 /proc/loadavg) =="
for run in $RUNS; do
  conns=${run%%:*}; swarms=${run##*:}
  start_server
  before=$(cpu_ticks)
  # The loader's own CPU time shows how much of the 2 cores it took.
  /usr/bin/time -f "loader cpu seconds: %U user + %S sys" \
    "$LOAD" --target "127.0.0.1:$PORT" --connections "$conns" --swarms "$swarms" \
    --offers 5 --window 2 --seconds "$SECONDS_PER_RUN" 2>&1 | grep -v ' connected ' | tee "$work/run.txt"
  after=$(cpu_ticks)
  replies=$(grep -o 'replies=[0-9]*' "$work/run.txt" | cut -d= -f2)
  cpu=$(echo "scale=2; ($after - $before) / $TICK" | bc)
  echo "server cpu seconds: $cpu  -> announces per server-cpu-second: $(echo "scale=0; $replies / $cpu" | bc)"
  stop_server
done

echo "== RSS per idle connection ($IDLE connections) =="
start_server
base=$(rss_kib)
"$LOAD" --target "127.0.0.1:$PORT" --idle --connections "$IDLE" --swarms 100 \
  --hold-seconds 40 > "$work/idle.txt" &
LOADER=$!
for _ in $(seq 300); do
  n=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^fanswarm_tracker_peers /{print $2}')
  [ "${n:-0}" -ge "$IDLE" ] && break
  sleep 0.1
done
sleep 2
held=$(rss_kib)
peers=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^fanswarm_tracker_(connections|peers) /{printf "%s=%s ", $1, $2}')
wait "$LOADER"
cat "$work/idle.txt"
echo "server RSS before: ${base} KiB, with idle sockets: ${held} KiB ($peers)"
echo "per connection: $(( (held - base) * 1024 / IDLE )) bytes; per 10,000: $(( (held - base) * 10000 / IDLE / 1024 )) MiB"
stop_server
