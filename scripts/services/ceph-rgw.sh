#!/usr/bin/env bash
# A single-node Ceph S3 endpoint for tests and benchmarks: a monitor, one memstore OSD and radosgw on 127.0.0.1:7480,
# no cephx, one S3 user with fixed test keys. Debian packages, installed when missing.
#
# Usage: scripts/services/ceph-rgw.sh [STATE_DIR] [PORT]     (default .services/ceph under the repository, 7480)
# One cluster per machine: the monitor listens on 127.0.0.1:3300 and 6789.
#
# Idempotent: when something already answers on the port it is left alone. Otherwise any daemons this script started
# earlier from STATE_DIR are stopped, the state is wiped (memstore keeps nothing across restarts anyway) and a fresh
# cluster starts. Prints the line that points the test suite at it:
#   FRAMECAST_TEST_S3_URL=http://ACCESS_KEY:SECRET_KEY@127.0.0.1:PORT
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${1:-$ROOT/.services/ceph}
PORT=${2:-7480}
ACCESS_KEY=TESTACCESSKEY123
SECRET_KEY=TESTSECRETKEY1234567890
START_TIMEOUT=60
ENV_LINE="FRAMECAST_TEST_S3_URL=http://$ACCESS_KEY:$SECRET_KEY@127.0.0.1:$PORT"

fail() {
  echo "ceph-rgw: $*" >&2
  exit 1
}

answers() {
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"
}

if answers; then
  echo "$ENV_LINE"
  exit 0
fi

# -- packages ----------------------------------------------------------------------------------------------------------
missing=0
for program in ceph-mon ceph-osd radosgw ceph radosgw-admin monmaptool ceph-authtool; do
  command -v "$program" >/dev/null || missing=1
done
if [ "$missing" = 1 ]; then
  command -v apt-get >/dev/null || fail "Ceph is not installed and there is no apt-get: install ceph-mon ceph-osd radosgw ceph-common"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "ceph-rgw: installing ceph-mon ceph-osd radosgw ceph-common (Debian packages)..." >&2
  $SUDO apt-get update -qq >/dev/null || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    ceph-mon ceph-osd radosgw ceph-common >/dev/null || fail "apt-get install of the Ceph packages failed"
fi

# -- a fresh cluster ---------------------------------------------------------------------------------------------------
# Stop only the daemons an earlier run of this script started (their pids are in STATE/run), and only while the pid
# still names a Ceph daemon (not a process that reused it).
stopped=()
for pidfile in "$STATE"/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  case "$(ps -p "$pid" -o comm= 2>/dev/null)" in
    ceph-mon | ceph-osd | radosgw) kill "$pid" 2>/dev/null && stopped+=("$pid") ;;
  esac
done
for pid in "${stopped[@]}"; do
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
done
for mon_port in 3300 6789; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$mon_port") 2>/dev/null; then
    fail "127.0.0.1:$mon_port is in use (another Ceph monitor?): one cluster per machine; stop it, or use its radosgw"
  fi
done
if [ -d "$STATE" ] && [ ! -f "$STATE/ceph.conf" ] && [ -n "$(ls -A "$STATE")" ]; then
  fail "$STATE is not empty and holds no ceph.conf: not a state directory of this script, so it is left alone"
fi
rm -rf "$STATE"
mkdir -p "$STATE"/{run,log,mon,osd,rgw}
D=$(cd "$STATE" && pwd)
FSID=$(python3 -c 'import uuid; print(uuid.uuid4())')
cat >"$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 6442450944
mon data avail warn = 5
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
ms bind ipv6 = false
[client.rgw.a]
# tcp_nodelay: without it small answers (ListParts, CompleteMultipartUpload...) wait 40 ms for a delayed ACK.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $D/rgw
# Reclaim deleted objects within seconds, not hours: tests and benchmarks write and delete gigabytes on an OSD that
# keeps everything in memory.
rgw gc obj min wait = 10
rgw gc processor period = 10
CONF
C=(-c "$D/ceph.conf")
deadline=$((SECONDS + START_TIMEOUT))

# Daemons run in their own session so they outlive the shell that started them.
daemon() {
  local name=$1
  shift
  setsid "$@" >"$D/log/$name.out" 2>&1 </dev/null &
  echo $! >"$D/run/$name.pid"
}

monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' --fsid "$FSID" "$D/monmap" >/dev/null
ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring" >/dev/null 2>&1 ||
  fail "ceph-mon --mkfs failed (is another Ceph monitor using 127.0.0.1:3300/6789?)"
daemon mon ceph-mon "${C[@]}" -i a -f

OSD_UUID=$(python3 -c 'import uuid; print(uuid.uuid4())')
OSD_ID=$(timeout "$START_TIMEOUT" ceph "${C[@]}" --connect-timeout "$START_TIMEOUT" osd new "$OSD_UUID" 2>/dev/null) ||
  fail "the monitor did not answer within ${START_TIMEOUT}s; see $D/log/mon.out and $D/log/mon.a.log"
mkdir -p "$D/osd/ceph-$OSD_ID"
ceph-osd "${C[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
daemon osd ceph-osd "${C[@]}" -i "$OSD_ID" -f
daemon rgw radosgw "${C[@]}" -n client.rgw.a -f

until answers; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    fail "radosgw did not answer on 127.0.0.1:$PORT within ${START_TIMEOUT}s; see $D/log/rgw.out and $D/log/*.log"
  fi
  sleep 0.2
done
timeout "$START_TIMEOUT" radosgw-admin "${C[@]}" user create --uid tester --display-name tester \
  --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null 2>&1 ||
  fail "radosgw-admin could not create the S3 user; see $D/log/"
echo "ceph-rgw: ready on http://127.0.0.1:$PORT (pids: mon $(cat "$D/run/mon.pid"), osd $(cat "$D/run/osd.pid"), rgw $(cat "$D/run/rgw.pid")); state in $D" >&2
echo "$ENV_LINE"
