#!/bin/sh
# Records the shipped traces (docs/traces.md). Run from the repository root, as root (or as a user allowed to
# read the processes' /proc/PID/mem). Needs: apt-get install -y --no-install-recommends sqlite3 redis-server gcc
# Traces differ from run to run (timing, addresses, the machine's load); the figures in traces/README.md are
# those of the committed files.
set -eu
LIVEMIG=${LIVEMIG:-"node --import tsx src/cli/bin.ts"}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. sqlite3 under a TPC-B-like benchmark (pgbench's default transaction), 20000 accounts cached in memory.
node traces/tpcb.mjs 30000 20000 > "$TMP/tpcb.sql"
$LIVEMIG trace record --freeze --interval 200ms --duration 5 --delay 300ms --out traces/sqlite-tpcb.lmtrace \
  --program sqlite3 --notes "sqlite3 3.40 running traces/tpcb.mjs 30000 20000 (TPC-B-like: 4 statements per transaction, WAL, cache 8 MB)" \
  -- sqlite3 "$TMP/tpcb.db" ".read $TMP/tpcb.sql"

# 2. redis-server under redis-benchmark (SET/INCR/LPUSH/HSET on 20000 keys, 64-byte values, 8 clients).
redis-server --port 6391 --save '' --appendonly no > "$TMP/redis.log" 2>&1 &
RPID=$!
sleep 0.5
redis-benchmark -p 6391 -t set -n 20000 -r 20000 -d 64 -P 16 -q > /dev/null
redis-benchmark -p 6391 -t set,incr,lpush,hset -n 2000000 -r 20000 -d 64 -c 8 -q > /dev/null 2>&1 &
BPID=$!
sleep 0.5
$LIVEMIG trace record --pid "$RPID" --freeze --interval 250ms --duration 6 --out traces/redis.lmtrace \
  --program redis-server --notes "redis-server 7.0 under redis-benchmark -t set,incr,lpush,hset -r 20000 -d 64 -c 8 (after a 20000-key SET prefill)"
kill "$BPID" "$RPID"
wait "$RPID" 2> /dev/null || true

# 3. gcc's compiler proper (cc1) at -O2 on a real C file from the zstd sources shipped in node_modules: the
#    first 0.4 s of the compile (parsing, GIMPLE, early optimisation passes), then the recording stops it.
$LIVEMIG trace record --freeze --interval 40ms --duration 0.4 --out traces/gcc-cc1.lmtrace \
  --program cc1 --notes "gcc 12 cc1 -O2 on zstd's lib/compress/fse_compress.c, first 0.4 s of running time" \
  -- /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet -imultiarch x86_64-linux-gnu -O2 \
  node_modules/zstd-napi/deps/zstd/lib/compress/fse_compress.c -o "$TMP/fse_compress.s"
