#!/usr/bin/env bash
# Installs the system packages nincc's tests and demos need on Debian 12 (run as root, as CI does).
# Idempotent: does nothing when everything is already there: the Fashion-MNIST IDX files, which Debian's
# dataset-fashion-mnist package puts in /usr/share/datasets/fashion-mnist, Open MPI (openmpi-bin,
# libopenmpi-dev) for data-parallel training under mpirun (docs/distributed.md; the addon loads
# libmpi.so.40 at run time, so nothing else needs it), and libjpeg-turbo's headers (libjpeg62-turbo-dev),
# without which the build leaves out nincc_jpeg.node and packed datasets decode with sharp
# (docs/packed-dataset.md). Run it before the addon is built (scripts/setup.sh does).
set -euo pipefail

FASHION_DIR=/usr/share/datasets/fashion-mnist
FASHION_FILES=(
  train-images-idx3-ubyte.gz
  train-labels-idx1-ubyte.gz
  t10k-images-idx3-ubyte.gz
  t10k-labels-idx1-ubyte.gz
)
MPI_PACKAGES=(openmpi-bin libopenmpi-dev)
JPEG_PACKAGES=(libjpeg62-turbo-dev)

say() { echo "install-deps: $*"; }
fail() { echo "install-deps: error: $*" >&2; exit 1; }

missing_fashion_files() {
  local f
  for f in "${FASHION_FILES[@]}"; do
    [[ -s "$FASHION_DIR/$f" ]] || echo "$f"
  done
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

PACKAGES=()
[[ -z "$(missing_fashion_files)" ]] || PACKAGES+=(dataset-fashion-mnist)
for pkg in "${MPI_PACKAGES[@]}" "${JPEG_PACKAGES[@]}"; do
  installed "$pkg" || PACKAGES+=("$pkg")
done

if ((${#PACKAGES[@]} == 0)); then
  say "Fashion-MNIST already present in $FASHION_DIR, Open MPI and libjpeg-turbo's headers installed; nothing to do"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
  fail "apt-get not found; this script targets Debian 12. Install the package '${PACKAGES[*]}' by other means, or put ${FASHION_FILES[*]} in $FASHION_DIR"

# Root runs apt-get directly (CI); a developer's account goes through sudo when it has it.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || fail "must run as root (or with sudo available) to apt-get install ${PACKAGES[*]}"
  SUDO=(sudo)
fi

# A fresh image has empty package lists; refresh them only when apt does not know the package yet,
# so repeated runs stay fast and work without touching the network.
has_candidate() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
  [[ -n "$candidate" && "$candidate" != "(none)" ]]
}
for pkg in "${PACKAGES[@]}"; do
  if ! has_candidate "$pkg"; then
    say "apt does not know $pkg yet; running apt-get update"
    "${SUDO[@]}" apt-get update ||
      fail "apt-get update failed; check network access to the Debian mirrors"
    has_candidate "$pkg" ||
      fail "package $pkg is not available from the configured apt sources (needs Debian 12 'main')"
    break
  fi
done

# Installed yet files missing means someone deleted them; only --reinstall puts them back.
REINSTALL=()
if [[ " ${PACKAGES[*]} " == *" dataset-fashion-mnist "* ]] && installed dataset-fashion-mnist; then
  say "dataset-fashion-mnist is installed but files are missing: $(echo $(missing_fashion_files)); reinstalling"
  REINSTALL=(--reinstall)
fi

say "running apt-get install -y ${REINSTALL[*]} ${PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends "${REINSTALL[@]}" "${PACKAGES[@]}" ||
  fail "apt-get install ${PACKAGES[*]} failed"

command -v mpirun >/dev/null 2>&1 || fail "after installing ${MPI_PACKAGES[*]}, mpirun is still not on PATH"
[[ -e /usr/include/jpeglib.h ]] || fail "after installing ${JPEG_PACKAGES[*]}, /usr/include/jpeglib.h is still missing"

still_missing=$(missing_fashion_files)
[[ -z "$still_missing" ]] ||
  fail "after installing, these files are still missing from $FASHION_DIR: $(echo $still_missing)"

say "Fashion-MNIST installed in $FASHION_DIR:"
ls -l "$FASHION_DIR"
