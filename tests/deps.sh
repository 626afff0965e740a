#!/usr/bin/env bash
# deps.sh PKG:FILE ... - installs each Debian package whose FILE (a path or a glob) is missing.
# Uses apt-get as root (or through passwordless sudo); otherwise prints the
# exact command and fails.
missing=()
for spec in "$@"; do
    pkg=${spec%%:*} file=${spec#*:}
    # the OpenBLAS library moves between multiarch and plain lib dirs (and libblas-dev also ships a cblas.h,
    # so the header alone does not prove OpenBLAS is there)
    if compgen -G "$file" >/dev/null || { [ "$pkg" = libopenblas-dev ] && ls /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so >/dev/null 2>&1; }; then
        continue
    fi
    missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "missing packages: ${missing[*]}"
    echo "install them with:  sudo apt-get update && sudo $cmd"
    exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null && $sudo $cmd >/dev/null || {
    echo "apt-get failed; run: sudo apt-get update && sudo $cmd"
    exit 1
}
