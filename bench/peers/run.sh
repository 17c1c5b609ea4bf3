#!/usr/bin/env bash
# The side-by-side benchmark at one size, split into invocations of bench/peers.py that
# each stay under 10 minutes, then one table of the pooled samples.
#   bash bench/peers/run.sh 1000 /tmp/peers-out     (feeds, output directory)
# RUNS=3 rounds by default; OURS=<commit> to run another commit than HEAD.
set -u
feeds=${1:-1000}
out=${2:-/tmp/peers-out}
runs=${RUNS:-3}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
py=.venv/bin/python
# One commit for every step, resolved once: others may commit while this runs.
ours=${OURS:-$(git rev-parse HEAD)}
step() {  # name, then bench/peers.py arguments
    local name=$1
    shift
    echo "== $name: $*" >&2
    timeout 590 "$py" bench/peers.py --feeds "$feeds" --scratch /tmp --ours "$ours" \
        --json "$out/n$feeds-$name.json" "$@" > "$out/n$feeds-$name.txt" 2>&1 \
        || echo "!! $name exited $?" >&2
}
"$py" bench/peers.py --setup --runs 0 --ours "$ours" > "$out/n$feeds-setup.txt" 2>&1 \
    || { echo "!! setup failed, see $out/n$feeds-setup.txt" >&2; exit 1; }
for round in $(seq 1 "$runs"); do
    step "cw-ours-f2e-$round" --tools ours,feed2exec --passes cold,warm --runs 1
    step "cw-rest-$round" --tools floor,floor-pool,rss2email,newsboat --passes cold,warm --runs 1
done
step steady-ours --tools ours,newsboat,rss2email --passes steady --runs "$runs"
step steady-f2e --tools feed2exec --passes steady --runs "$runs"
step steady-floor --tools floor,floor-pool --passes steady --runs "$runs"
"$py" bench/peers.py --merge "$out"/n"$feeds"-*.json > "$out/n$feeds-table.md"
cat "$out/n$feeds-table.md"
