# Sourced by run-tests.sh and run-examples.sh: installs the Debian 12 packages
# needed to build and test normkit, skipping apt entirely when all are present.
normkit_deps=(cmake make g++ clang libclang-rt-14-dev libeigen3-dev libxsimd-dev catch2 libbenchmark-dev)

normkit_install_deps() {
  local missing=() pkg
  for pkg in "${normkit_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    echo "== dependencies: all installed"
    return 0
  fi
  echo "== dependencies: installing ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "error: missing ${missing[*]}; run as root or install sudo" >&2; return 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q </dev/null
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}
