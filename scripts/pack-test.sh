#!/usr/bin/env bash
# The package works when installed: pack livemig, install the tarball into an empty project (from the npm registry,
# as a user would), and there run the CLI, type-check and run a program written against the public API
# (scripts/pack-test/check.ts). Everything the package loads at run time — worker threads, the WebAssembly codec,
# native addons, the dashboard's files, the shipped traces and PlanetLab days — must come from node_modules/livemig.
#
#   bash scripts/pack-test.sh            # builds first (npm run build)
#   bash scripts/pack-test.sh --no-build # use the dist/ already built (CI builds just before)
#   KEEP=1 bash scripts/pack-test.sh     # keep the temporary project and print where it is
#
# About 2 minutes on 2 cores, most of it `npm install` (zstd-napi compiles its addon). Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "${1:-}" != "--no-build" ]; then npm run build --silent; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/livemig-pack-test.XXXXXX")
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "pack-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "pack-test: FAILED: $*" >&2
  exit 1
}
step() { echo "pack-test: $*"; }

# 1. Pack, and check that the tarball holds what the package loads at run time.
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n 1)"
step "packed $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$work/files.txt"
node "$repo/scripts/pack-test/files.mjs" "$repo" "$work/files.txt" || fail "the tarball lacks files the package needs"

# 2. An empty project that installs the tarball. zstd-napi builds its addon in an install script: npm 11 runs a
# dependency's install script only once the project approves it (allowScripts); --strict-allow-scripts makes any
# script the project has not approved an error, so this proves the approval below is all a user needs.
app="$work/app"
mkdir -p "$app"
ts_version=$(node -p "require('$repo/node_modules/typescript/package.json').version")
types_version=$(node -p "require('$repo/node_modules/@types/node/package.json').version")
cat >"$app/package.json" <<EOF
{
  "name": "livemig-pack-test",
  "private": true,
  "type": "module",
  "allowScripts": { "zstd-napi": true }
}
EOF
cp "$repo/scripts/pack-test/check.ts" "$repo/scripts/pack-test/tsconfig.json" "$app/"
step "npm install (the tarball, typescript@$ts_version, @types/node@$types_version)"
(cd "$app" && npm install --prefer-offline --no-audit --no-fund --strict-allow-scripts --loglevel=error \
  "$tarball" "typescript@$ts_version" "@types/node@$types_version") || fail "npm install"
[ -f "$app/node_modules/zstd-napi/build/Release/binding.node" ] || fail "zstd-napi's addon was not built"

cd "$app"
# From here on, nothing may come from the repository: only node_modules/livemig.
unset LIVEMIG_CLI

# 3. The CLI.
# Read the whole help before matching: `grep -q` would close the pipe at its first match.
help=$(npx livemig --help) || fail "livemig --help exited non-zero"
grep -q '^Usage: livemig' <<<"$help" || fail "livemig --help does not start with its usage"
# A reader that stops early must not make the CLI crash with EPIPE.
npx livemig --help 2>"$work/epipe.err" | head -c 1 >/dev/null
[ ! -s "$work/epipe.err" ] || fail "livemig --help | head: $(head -n 3 "$work/epipe.err")"
step "livemig --help"

npx livemig run --ram 64MiB --json >run.json || fail "livemig run --ram 64MiB --json"
node -e '
const r = JSON.parse(require("fs").readFileSync("run.json", "utf8"));
if (r.status !== "completed" || r.verified !== true) { console.error(r); process.exit(1); }
console.log(`pack-test: livemig run: ${r.status}, verified, ${r.rounds} rounds, ${r.downtimeMs} ms downtime`);
' || fail "livemig run did not report a verified migration"

# XBZRLE (WebAssembly) and zstd (native addon) on the migration path, in the agent processes.
npx livemig run --ram 32MiB --warmup 300ms --xbzrle --compress zstd --json >run-zstd.json ||
  fail "livemig run --xbzrle --compress zstd"
node -e '
const r = JSON.parse(require("fs").readFileSync("run-zstd.json", "utf8"));
if (r.status !== "completed" || r.verified !== true || r.pages.compressed === 0) { console.error(r); process.exit(1); }
console.log(`pack-test: livemig run --xbzrle --compress zstd: ${r.pages.compressed} pages compressed, ${r.pages.xbzrle} xbzrle`);
' || fail "livemig run --xbzrle --compress zstd did not verify or compressed nothing"

npx livemig sim --day 20110303 --policy lr-mmt --compat cloudsim --json --no-progress >sim.json ||
  fail "livemig sim --day 20110303 (the bundled PlanetLab day)"
node -e '
const [r] = JSON.parse(require("fs").readFileSync("sim.json", "utf8"));
if (!(r.vms > 1000 && r.energyKWh > 0)) { console.error(r); process.exit(1); }
console.log(`pack-test: livemig sim --day 20110303: ${r.vms} VMs, ${r.energyKWh.toFixed(1)} kWh, ${r.migrations} migrations`);
' || fail "livemig sim --day 20110303 gave no result"

# Simulation worker threads (dist/sim/worker.js).
npx livemig sim --synthetic 60 --hosts 40 --policy lr-mmt,thr-mmt --jobs 2 --json --no-progress >sim-jobs.json ||
  fail "livemig sim --jobs 2"
node -e 'const r = JSON.parse(require("fs").readFileSync("sim-jobs.json", "utf8")); if (r.length !== 2) process.exit(1)' ||
  fail "livemig sim --jobs 2 did not return two results"
step "livemig sim --jobs 2 (worker threads)"

# The shipped traces of real programs, found by the experiments from the installed package.
npx livemig experiment codecs --quick --dry-run >dry-run.txt || fail "livemig experiment codecs --quick --dry-run"
grep -q 'trace:redis' dry-run.txt || fail "the experiments do not find the shipped traces (traces/*.lmtrace)"
step "experiment --dry-run lists the shipped traces"

# The dashboard's static files (dist/web/public), served by an agent.
# (node_modules/.bin/livemig rather than npx, so that $! is the agent itself.)
node_modules/.bin/livemig agent --listen 127.0.0.1:0 --ready-json --quiet --dashboard >agent.json &
agent_pid=$!
for _ in $(seq 1 300); do [ -s agent.json ] && break; sleep 0.1; done
address=$(node -p 'JSON.parse(require("fs").readFileSync("agent.json", "utf8").split("\n")[0]).address') ||
  fail "the agent did not start"
node -e '
const url = `http://${process.argv[1]}/dashboard/`;
fetch(url).then(async (r) => {
  const body = await r.text();
  if (r.status !== 200 || !body.includes("app.js")) { console.error(r.status, body.slice(0, 300)); process.exit(1); }
  const js = await fetch(new URL("app.js", url));
  if (js.status !== 200) process.exit(1);
  console.log(`pack-test: dashboard served from the package (${url})`);
});
' "$address" || fail "the dashboard's files were not served"
kill "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""

# 4. A TypeScript program against the public API: type-checks (with the package's .d.ts checked too), then runs.
npx tsc --noEmit -p . || fail "check.ts does not type-check against the installed package"
step "tsc --noEmit: check.ts type-checks against the installed package"
npx tsc -p . || fail "tsc"
node out/check.js || fail "check.ts failed"
step "all checks passed"
