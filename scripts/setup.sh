#!/usr/bin/env bash
# Sets up faceid on a fresh Debian/Ubuntu machine: the system packages the model fetcher
# needs (npm, pip, tar), FFmpeg's libraries for selfie videos (and the `ffmpeg` command the
# video tests derive clips with), the WebKitGTK stack of the Tauri kiosk (with Xvfb and
# WebKitWebDriver for its UI tests), release builds of the `faceid` CLI and the kiosk, every
# pinned artefact (models, ONNX Runtime, sample photos) checked against its sha256, and the
# kiosk's demo camera clip cut from a sample photo, and PostgreSQL 15 (the tests start
# their own throwaway clusters on loopback). Idempotent and offline once done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v tar >/dev/null 2>&1 || need+=(tar)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
for pkg in espeak-ng libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libclang-dev \
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev libxdo-dev \
  libssl-dev xvfb xauth webkit2gtk-driver postgresql-15 fonts-dejavu-core fonts-ocr-b; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "faceid needs a Rust toolchain (stable, 1.95 or newer): install it with rustup, then re-run." >&2
  exit 1
fi

cargo build --release --locked -p faceid-cli -p faceid-kiosk
./target/release/faceid models fetch

# The kiosk's demo camera (used when no webcam is found): a 640x480 one-face frame cut from
# a fetched sample photo, held for six seconds.
if [ ! -s models/demo/selfie.mp4 ]; then
  mkdir -p models/demo
  ./target/release/faceid bench models/samples/sample3.jpg --runs 1 --save-frame models/demo/frame.jpg >/dev/null
  ffmpeg -v error -y -loop 1 -framerate 25 -i models/demo/frame.jpg -t 6 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p models/demo/selfie.mp4
fi
