# Sourced by the benchmark scripts: `pinned_venv DIR PACKAGE==VERSION...`
# makes DIR a venv holding exactly those versions, unless it already does.
pinned_venv() {
  local dir="$1"
  shift
  if ! "$dir/bin/python" -c '
import importlib.metadata, sys
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    assert importlib.metadata.version(name) == version, spec
' "$@" 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  fi
}
