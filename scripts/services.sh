# Sourced by scripts/test.sh: private Redis and Postgres for the tests marked redis/postgres.
#
# start_test_services installs redis-server / postgresql (and chromium and Debian's
# dataset-fashion-mnist for the browser and full-size tests) when missing (root + apt-get only),
# starts a private redis-server and a private Postgres cluster on free ports under a
# temporary directory, and exports DLGRADE_TEST_REDIS_URL, DLGRADE_TEST_DATABASE_URL and
# DLGRADE_TEST_REDIS_SERVER (the binary, for tests that start a Redis of their own).
# stop_test_services stops both and removes the directory. A variable that is already set
# is respected: point it at your own service and nothing is started for it.

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

find_initdb() {
  command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

install_missing_services() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ -n "$(find_initdb)" ] || missing+=(postgresql-common postgresql)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the browser tests
  # the full-size accuracy test (60k/10k Fashion-MNIST, grader.data.fashion_mnist)
  [ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

start_test_redis() {
  local server port
  server=$(command -v redis-server) || { echo "redis-server not found; redis tests will not run" >&2; return 0; }
  export DLGRADE_TEST_REDIS_SERVER="$server"
  [ -z "${DLGRADE_TEST_REDIS_URL:-}" ] || return 0
  port=$(free_port)
  mkdir -p "$DLGRADE_SERVICES_DIR/redis"
  "$server" --port "$port" --bind 127.0.0.1 --appendonly yes --maxmemory-policy noeviction \
    --daemonize yes --dir "$DLGRADE_SERVICES_DIR/redis" --save '' \
    --pidfile "$DLGRADE_SERVICES_DIR/redis/redis.pid" --logfile "$DLGRADE_SERVICES_DIR/redis/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export DLGRADE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

start_test_postgres() {
  [ -z "${DLGRADE_TEST_DATABASE_URL:-}" ] || return 0
  local initdb bin port data
  initdb=$(find_initdb)
  [ -n "$initdb" ] || { echo "initdb not found; postgres tests will not run" >&2; return 0; }
  bin=$(dirname "$(readlink -f "$initdb")")
  port=$(free_port)
  data="$DLGRADE_SERVICES_DIR/pg"
  mkdir -p "$data" && chmod 700 "$data"
  [ "$(id -u)" != 0 ] || chown -R postgres: "$DLGRADE_SERVICES_DIR/pg"
  as_postgres "'$bin/initdb' -D '$data' -A trust -U postgres" >/dev/null
  as_postgres "'$bin/pg_ctl' -D '$data' -w -l '$data/server.log' \
    -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start" >/dev/null
  export DLGRADE_TEST_PG_CTL="$bin/pg_ctl" DLGRADE_TEST_PG_DATA="$data"
  export DLGRADE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

start_test_services() {
  install_missing_services
  DLGRADE_SERVICES_DIR=$(mktemp -d /tmp/dlgrade-services.XXXXXX)
  chmod 755 "$DLGRADE_SERVICES_DIR"
  export DLGRADE_SERVICES_DIR
  start_test_redis
  start_test_postgres
}

stop_test_services() {
  [ -n "${DLGRADE_SERVICES_DIR:-}" ] && [ -d "$DLGRADE_SERVICES_DIR" ] || return 0
  if [ -n "${DLGRADE_TEST_PG_DATA:-}" ]; then
    as_postgres "'$DLGRADE_TEST_PG_CTL' -D '$DLGRADE_TEST_PG_DATA' -m immediate stop" >/dev/null 2>&1 || true
  fi
  if [ -f "$DLGRADE_SERVICES_DIR/redis/redis.pid" ]; then
    kill "$(cat "$DLGRADE_SERVICES_DIR/redis/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$DLGRADE_SERVICES_DIR"
}
