#!/usr/bin/env bash
# Installs the system packages swift-diffusers builds against (Debian 12), then fetches oneDNN
# 3.2 into .deps/ (scripts/fetch-onednn.sh). Idempotent: does nothing when everything is
# already there.
set -euo pipefail

# libgomp1: the OpenMP runtime oneDNN and our kernels share; python3-pip: fetching oneDNN's
# official build from PyPI (Debian's libdnnl-dev is 2.6, too old); zlib: PNG files;
# libjpeg-turbo and libwebp (with libwebpmux, for the EXIF chunk): JPEG and WebP output.
packages=(libgomp1 python3-pip zlib1g-dev libjpeg62-turbo-dev libwebp-dev)

if ! command -v swift >/dev/null 2>&1; then
    echo "error: the Swift toolchain (swift) is not on PATH; install Swift 6 first." >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
fetch_onednn() { "$(dirname "$0")/fetch-onednn.sh"; }
if [ ${#missing[@]} -eq 0 ]; then fetch_onednn; exit 0; fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "error: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi
echo "Installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fetch_onednn
