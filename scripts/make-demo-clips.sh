#!/usr/bin/env bash
# Makes the demo cameras' looping H.264 clips, internal/demo/clips/*.h264,
# which the demo RTSP server (internal/demo) embeds and plays in a loop.
#
#   scripts/make-demo-clips.sh           make the clips that are missing
#   scripts/make-demo-clips.sh --force   make all of them again
#
# Each clip is a raw Annex-B H.264 elementary stream: 640x360, 25 fps, 10 s
# (250 frames), constrained baseline, yuv420p, an IDR with SPS and PPS every
# 50 frames (2 s) and no B-frames, so a loop boundary is a keyframe and the
# pictures play in decoding order. The sources are ffmpeg's lavfi generators,
# with the camera's label drawn on when drawtext has a font (DejaVu Sans);
# one thread and no encoder SEI keep the output the same from run to run
# with the same ffmpeg. Debian's ffmpeg (5.1) made the committed clips.
set -euo pipefail

cd "$(dirname "$0")/.."
out=internal/demo/clips
force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

command -v ffmpeg >/dev/null || { echo "ffmpeg is needed (Debian: apt-get install ffmpeg)" >&2; exit 1; }

size=640x360
fps=25
seconds=10
max_bytes=$((2 * 1024 * 1024))

# A font for the label, when drawtext and the font are both there. DejaVu
# has no CJK glyphs, so labels are in pinyin.
font=""
filters=$(ffmpeg -hide_banner -filters 2>/dev/null || true)
if grep -q ' drawtext ' <<<"$filters"; then
  for f in /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; do
    if [ -r "$f" ]; then font=$f; break; fi
  done
fi
if [ -z "$font" ]; then
  echo "no drawtext or no DejaVu font: the clips get no label" >&2
fi

# clip file, lavfi source, label: one line per demo camera of
# configs/demo/sites.yaml (its `clip:` names the file).
cameras=(
  "bht-dam.h264|testsrc2=size=$size:rate=$fps|DEMO  Baihetan dam"
  "xld-dam.h264|smptehdbars=size=$size:rate=$fps|DEMO  Xiluodu dam"
  "qj-gate.h264|mandelbrot=size=$size:rate=$fps|DEMO  Qiaojia resettlement gate"
  "xz-port-gate.h264|life=size=$size:rate=$fps:seed=6:ratio=0.12:mold=12:life_color=#30c0ff:mold_color=#203040|DEMO  Xiangzhi port gate"
)

mkdir -p "$out"
for entry in "${cameras[@]}"; do
  IFS='|' read -r file src label <<<"$entry"
  dst=$out/$file
  if [ -s "$dst" ] && [ "$force" = 0 ]; then
    echo "$dst exists"
    continue
  fi
  vf="format=yuv420p"
  if [ -n "$font" ]; then
    # A box with the label and the clip's own running time (it restarts at
    # every loop: this is a loop, not a clock).
    vf="$vf,drawtext=fontfile=$font:text='$label':x=16:y=h-th-20:fontsize=22:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6"
    vf="$vf,drawtext=fontfile=$font:text='%{pts\\:hms}':x=w-tw-20:y=h-th-20:fontsize=20:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6"
  fi
  tmp=$(mktemp "$out/.$file.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "$src" -t "$seconds" -vf "$vf" -an \
    -c:v libx264 -threads 1 -preset medium -profile:v baseline -pix_fmt yuv420p \
    -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 \
    -b:v 500k -maxrate 700k -bufsize 1400k \
    -x264-params repeat-headers=1 \
    -bsf:v filter_units=remove_types=6 \
    -f h264 "$tmp"
  bytes=$(stat -c %s "$tmp")
  if [ "$bytes" -ge "$max_bytes" ]; then
    echo "$dst would be $bytes bytes, over 2 MiB: lower -b:v" >&2
    exit 1
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$dst"
  trap - EXIT
  echo "$dst: $bytes bytes"
done
