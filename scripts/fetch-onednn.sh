#!/usr/bin/env bash
# Fetches oneDNN 3.2 (Intel's official CPU-only build on GNU OpenMP, from PyPI) into
# .deps/onednn (ignored by git): Debian 12's libdnnl-dev is 2.6.3, whose matmul falls back to
# gemm:jit and whose bf16 kernels are 3-5x behind 3.x on AVX-512/AMX machines. The two wheels
# are checked against their sha256 and unpacked: the library (lib/libdnnl.so.3) and its headers.
# Nothing runs Python at run time; the build links the library with an rpath. Idempotent: does
# nothing when the unpacked version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=2023.2.0                 # = oneDNN 3.2.0
target=.deps/onednn
stamp="$target/VERSION"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && [ -f "$target/lib/libdnnl.so.3" ] && exit 0

declare -A sha256=(
    [onednn_cpu_gomp-$version-py2.py3-none-manylinux1_x86_64.whl]=2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb
    [onednn_devel_cpu_gomp-$version-py2.py3-none-manylinux1_x86_64.whl]=9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284
)

if [ "$(uname -m)" != x86_64 ]; then
    echo "error: the oneDNN build fetched here is for x86-64; this machine is $(uname -m)." >&2
    exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: python3 -m pip is needed to fetch oneDNN (scripts/setup-system.sh installs python3-pip)." >&2
    exit 1
fi

download=$(mktemp -d)
staging=""
# A failed fetch or unpack leaves neither the download nor a half-unpacked folder behind.
trap 'rm -rf "$download" ${staging:+"$staging"}' EXIT
echo "Fetching oneDNN $version (about 39 MB)"
python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
    --dest "$download" "onednn-cpu-gomp==$version" "onednn-devel-cpu-gomp==$version"
for wheel in "${!sha256[@]}"; do
    echo "${sha256[$wheel]}  $download/$wheel" | sha256sum --check --quiet - || {
        echo "error: $wheel does not have the expected sha256; not using it." >&2
        exit 1
    }
done

mkdir -p .deps
staging=$(mktemp -d .deps/.onednn-XXXXXX)
python3 - "$download" "$staging" <<'PY'
import pathlib, shutil, sys, zipfile
download, staging = map(pathlib.Path, sys.argv[1:3])
for wheel in sorted(download.glob("*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            # <dist>.data/data/{lib,include,share}/...: the headers, the licence, and the
            # library once (the wheel holds three copies of it, not links).
            parts = pathlib.PurePosixPath(name).parts
            if len(parts) < 4 or parts[1] != "data" or parts[2] not in ("lib", "include", "share"):
                continue
            relative = pathlib.PurePosixPath(*parts[2:])
            if relative.parts[0] == "lib" and relative.name != "libdnnl.so.3":
                continue
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
PY
ln -sf libdnnl.so.3 "$staging/lib/libdnnl.so"
chmod 755 "$staging"
echo "$version" > "$staging/VERSION"
rm -rf "$target"
mv "$staging" "$target"
echo "oneDNN $version unpacked into $target"
