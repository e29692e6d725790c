#!/usr/bin/env bash
# Native WebRTC peer throughput on this machine: one `seed` → one `get`,
# over loopback, through a local `serve` tracker, release build.
# Usage: signal-server/bench/native-bench.sh [MiB]   (default 40)
# Prints the get's own "download complete" line and the MiB/s it implies.
set -euo pipefail
MIB=${1:-40}
BIN=${BIN:-target/release/signal-server}
PORT=${PORT:-18481}
[ -x "$BIN" ] || cargo build --release -p signal-server
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

head -c $((MIB * 1024 * 1024)) /dev/urandom > "$WORK/track.bin"
TRACKER="ws://127.0.0.1:$PORT/announce"
"$BIN" serve --listen "127.0.0.1:$PORT" --web-dir "$WORK" --cache-dir "$WORK/cache" \
  > "$WORK/serve.log" 2>&1 &
PIDS+=($!)
RUST_LOG=${SEED_LOG:-warn} "$BIN" seed "$WORK/track.bin" --tracker "$TRACKER" --webrtc-bind 127.0.0.1 \
  --torrent-out "$WORK/t" > "$WORK/seed.log" 2>&1 &
SEED=$!
PIDS+=($SEED)
for _ in $(seq 100); do [ -f "$WORK/t/track.bin.torrent" ] && break; sleep 0.2; done
sleep 1 # let the seeder announce
seed_ticks() { awk '{ print $14 + $15 }' "/proc/$SEED/stat"; }
SEED_BEFORE=$(seed_ticks)
START=$(date +%s.%N)
RUST_LOG=info ${GET_WRAP:-} "$BIN" get "$WORK/t/track.bin.torrent" --tracker "$TRACKER" --webrtc-bind 127.0.0.1 \
  --out "$WORK/out" --exit-when-done 2>&1 | grep -E "complete|error|cpu" | sed 's/\x1b\[[0-9;]*m//g'
END=$(date +%s.%N)
echo "seeder CPU during the get: $(( $(seed_ticks) - SEED_BEFORE )) ticks of 1/$(getconf CLK_TCK) s"
[ -n "${SEED_LOG:-}" ] && echo "seeder watermark crossings: $(grep -c 'send buffer watermark' "$WORK/seed.log")"
cmp "$WORK/track.bin" "$WORK/out/track.bin" && echo "byte-identical: yes"
awk -v s="$START" -v e="$END" -v m="$MIB" \
  'BEGIN { printf "wall time of get (process start to exit): %.2f s, %.1f MiB/s\n", e - s, m / (e - s) }'
