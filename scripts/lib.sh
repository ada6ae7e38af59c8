# Shared by scripts/dev and scripts/test: install what is missing, start project-local
# PostgreSQL, Redis and S3 (s3s-fs's store, scripts/s3-server) under .data/, and stop them again.
# Every setting can be overridden from the environment.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA_DIR:-$ROOT/.data}
# Where cargo puts binaries (honours CARGO_TARGET_DIR).
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export DOCS_ASSETS_DIR=${DOCS_ASSETS_DIR:-$DATA/swagger-ui}
SWAGGER_UI_VERSION=5.35.0
export MUSIC_DIR=${MUSIC_DIR:-$DATA/music}
MUSIC_PACKAGE=immich-memories-music==0.1.0
# Where the generated clips the styles' samples are rendered from are made. Not STYLE_SAMPLE_CLIPS
# itself: a worker given that renders the samples, which only scripts/dev's and the browser
# test's workers should.
export SAMPLE_CLIPS_DIR=${SAMPLE_CLIPS_DIR:-$DATA/sample-clips}
SAMPLE_CLIPS_MADE=1
S3_DEV_SERVER_VERSION=0.3.0
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6380}
S3_PORT=${S3_PORT:-9000}
export DATABASE_URL=${DATABASE_URL:-postgres://montage@127.0.0.1:$PG_PORT/montage}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/}
export S3_ENDPOINT=${S3_ENDPOINT:-http://127.0.0.1:$S3_PORT}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-montage-dev}
export S3_SECRET_KEY=${S3_SECRET_KEY:-montage-dev-secret}
export S3_BUCKET=${S3_BUCKET:-montage}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && echo "$dir"
}

# Debian packages for the services, libav headers for ffmpeg-next, and the ffmpeg CLI
# that tests use to make clips and check outputs.
ensure_packages() {
  local missing=()
  [ -n "$(pg_bin)" ] || missing+=(postgresql)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v clang >/dev/null || missing+=(clang)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || missing+=(fonts-dejavu-core)
  [ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
  # npm fetches the Swagger UI files that /docs serves.
  command -v npm >/dev/null || missing+=(npm)
  for lib in libavcodec libavformat libavfilter libavdevice libswscale libswresample libavutil; do
    pkg-config --exists "$lib" 2>/dev/null || missing+=("$lib-dev")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "Installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # The version answers CORS preflights (the web app's direct uploads) and refuses unsigned
  # x-amz-* headers on presigned requests, as AWS does; older installs are replaced.
  if ! cargo install --list | grep -q "^s3-dev-server v$S3_DEV_SERVER_VERSION "; then
    log "Installing s3-dev-server $S3_DEV_SERVER_VERSION (S3-compatible server, scripts/s3-server)"
    cargo install --path "$ROOT/scripts/s3-server" --locked --target-dir "$ROOT/target/s3-server"
  fi
}

# The test runner: nextest runs each test in a process of its own, which tests that read
# process-wide metrics need.
ensure_nextest() {
  if ! command -v cargo-nextest >/dev/null; then
    log "Installing cargo-nextest (the test runner)"
    cargo install cargo-nextest --locked
  fi
}

# The browser tests' Chromium (Debian's) and Playwright for Python driving it, in a virtual
# environment under .data; scripts/test exports BROWSER_PYTHON for the suite.
PLAYWRIGHT_VERSION=1.65.2
AXE_VERSION=4.14.1
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v npm >/dev/null || missing+=(npm)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "Installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local venv=$DATA/browser-venv
  if ! "$venv/bin/python" -c "import playwright" 2>/dev/null ||
    [ "$("$venv/bin/pip" show playwright 2>/dev/null | sed -n 's/^Version: //p')" != "$PLAYWRIGHT_VERSION" ]; then
    log "Installing Playwright $PLAYWRIGHT_VERSION for the browser tests"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION"
  fi
  export BROWSER_PYTHON=$venv/bin/python
  export CHROMIUM=${CHROMIUM:-$(command -v chromium)}
  # axe-core, which the browser tests run on every page, from its npm package.
  local axe=$DATA/axe
  if [ "$(cat "$axe/.installed" 2>/dev/null)" != "$AXE_VERSION" ]; then
    log "Installing axe-core $AXE_VERSION for the browser tests"
    mkdir -p "$axe"
    npm install --silent --no-audit --no-fund --prefix "$axe" "axe-core@$AXE_VERSION" >/dev/null
    echo "$AXE_VERSION" >"$axe/.installed"
  fi
  export AXE_JS=$axe/node_modules/axe-core/axe.min.js
}

# What a new integrator would run over /openapi.json: a validator and a client generator (with
# ruff, which the generator formats its output with), pinned, in a virtual environment under .data.
CONTRACT_TOOLS="openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 ruff==0.17.6"
ensure_contract_tools() {
  local venv=$DATA/contract-venv
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$CONTRACT_TOOLS" ]; then
    log "Installing the contract checks' tools"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # one word per package
    "$venv/bin/pip" install -q $CONTRACT_TOOLS
    echo "$CONTRACT_TOOLS" >"$venv/.installed"
  fi
  CONTRACT_VENV=$venv
}

# Validates the served document and generates a Python client from it; any error or warning
# about the document fails.
check_contract() {
  local api=$1 dir
  ensure_contract_tools
  dir=$(mktemp -d)
  curl -sf "$api/openapi.json" -o "$dir/openapi.json"
  "$CONTRACT_VENV/bin/openapi-spec-validator" "$dir/openapi.json"
  (cd "$dir" && PATH="$CONTRACT_VENV/bin:$PATH" openapi-python-client generate \
    --path openapi.json --config "$ROOT/scripts/contract-client.yaml" --fail-on-warning >generate.log 2>&1) || { cat "$dir/generate.log"; return 1; }
  if grep -qi "warning" "$dir/generate.log"; then cat "$dir/generate.log"; return 1; fi
  rm -rf "$dir"
  log "The document validates and a client generates from it without a warning"
}

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start on port $port; see $DATA/$name.log" >&2
  return 1
}

# PostgreSQL will not run as root: the cluster belongs to the postgres user when we are root.
pg_run() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The cluster's directory. As root the server runs as the postgres user, who cannot enter
# a clone inside a private home (mode 0700, as /root is): then the cluster lives under
# /var/lib/montage, one per clone.
pg_dir() {
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$DATA" 2>/dev/null; then
    echo "$DATA/pg"
  else
    echo "/var/lib/montage/pg-$(printf '%s' "$DATA" | sha256sum | cut -c1-12)"
  fi
}

start_postgres() {
  local bin dir; bin=$(pg_bin)
  mkdir -p "$DATA"
  dir=$(pg_dir)
  if [ ! -s "$dir/PG_VERSION" ]; then
    log "Creating PostgreSQL cluster in $dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" && chmod 0700 "$dir"
    pg_run "$bin/initdb" -D "$dir" -U montage --auth=trust -E UTF8 >/dev/null
  fi
  if ! pg_run "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    log "Starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_run "$bin/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp -c fsync=${PG_FSYNC:-on} -c max_connections=300" start >/dev/null
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U montage -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='montage'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U montage -d postgres -qc "CREATE DATABASE montage"
  fi
}

start_redis() {
  mkdir -p "$DATA/redis"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "Starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" --appendonly yes \
      --daemonize yes --pidfile "$DATA/redis.pid" --logfile "$DATA/redis.log"
    wait_for_port "$REDIS_PORT" redis
  fi
}

start_s3() {
  mkdir -p "$DATA/s3"
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
    log "Starting s3-dev-server on 127.0.0.1:$S3_PORT"
    nohup s3-dev-server --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" \
      --secret-key "$S3_SECRET_KEY" "$DATA/s3" >"$DATA/s3.log" 2>&1 &
    echo $! >"$DATA/s3.pid"
    wait_for_port "$S3_PORT" s3
  fi
}

# The Swagger UI files /docs serves, from the npm package (never a CDN at run time).
ensure_docs_assets() {
  [ -s "$DOCS_ASSETS_DIR/swagger-ui-bundle.js" ] && return 0
  log "Fetching swagger-ui-dist $SWAGGER_UI_VERSION for /docs"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" >/dev/null && tar -xzf swagger-ui-dist-*.tgz)
  mkdir -p "$DOCS_ASSETS_DIR"
  cp "$tmp/package/swagger-ui.css" "$tmp/package/swagger-ui-bundle.js" "$DOCS_ASSETS_DIR/"
  rm -rf "$tmp"
}

# The music catalogue: the MIT-licensed tracks of a PyPI package, unpacked (never fetched at
# run time).
ensure_music() {
  [ "$(cat "$MUSIC_DIR/.installed" 2>/dev/null)" = "$MUSIC_PACKAGE" ] && return 0
  log "Installing the music catalogue ($MUSIC_PACKAGE)"
  local tmp; tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv"
  rm -rf "$MUSIC_DIR"
  "$tmp/venv/bin/pip" install -q --no-deps --target "$MUSIC_DIR" "$MUSIC_PACKAGE"
  echo "$MUSIC_PACKAGE" >"$MUSIC_DIR/.installed"
  rm -rf "$tmp"
}

# Gameplay-like clips from ffmpeg's own generators, each with a tone that swells every two
# seconds (moments the analysis picks): made here, never shipped as files. The Dockerfile makes
# the same with the same command.
ensure_sample_clips() {
  [ "$(cat "$SAMPLE_CLIPS_DIR/.made" 2>/dev/null)" = "$SAMPLE_CLIPS_MADE" ] && return 0
  log "Generating the clips the style samples are cut from"
  mkdir -p "$SAMPLE_CLIPS_DIR"
  "$ROOT/scripts/sample-clips" "$SAMPLE_CLIPS_DIR"
  echo "$SAMPLE_CLIPS_MADE" >"$SAMPLE_CLIPS_DIR/.made"
}

start_services() {
  ensure_packages
  ensure_docs_assets
  ensure_music
  ensure_sample_clips
  start_postgres
  start_redis
  start_s3
}

stop_services() {
  local bin; bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -s "$(pg_dir)/PG_VERSION" ]; then
    pg_run "$bin/pg_ctl" -D "$(pg_dir)" -m fast stop >/dev/null 2>&1 || true
  fi
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [ -s "$DATA/s3.pid" ]; then
    kill "$(cat "$DATA/s3.pid")" 2>/dev/null || true
    rm -f "$DATA/s3.pid"
  fi
}
