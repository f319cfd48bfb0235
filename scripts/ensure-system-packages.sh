#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing (CI starts from nothing).
#   chromium                      Playwright drives it headless (UI and catalog site tests)
#   redis-server                  the multi-machine queue test (ZISHU_QUEUE=redis://...)
#   xvfb xauth + Qt's X11 libs    the pywebview window test (Qt WebEngine on a virtual screen)
#   espeak-ng                     the offline default voice, and the phonemes of Piper voices
#   ffmpeg                        mp3/opus speech on /v1/audio/speech; the storyboard's MP4 export (and ffprobe)
#   fonts-noto-cjk                subtitles burned into videos, in Chinese and Japanese too
set -euo pipefail
QT_LIBS=(libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libnss3 libxcomposite1 libxdamage1 libxrandr2
         libxtst6 libasound2 libxkbfile1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
         libxcb-shape0 libxcb-xinerama0 libdbus-1-3)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v xauth >/dev/null 2>&1 || missing+=(xauth)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-noto-cjk)
for pkg in "${QT_LIBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
