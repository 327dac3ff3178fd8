#!/usr/bin/env bash
# make-prompts.sh -- generate the Considerate Callback voice prompts.
#
# A developer tool: the WAVs it writes to sounds/<lang>/ are committed, so
# neither the app nor the tests need a speech synthesiser. Run it again after
# changing a text below; it rewrites sounds/README.md as well.
#
#   scripts/make-prompts.sh            all languages
#   scripts/make-prompts.sh de         one language
#
# Voice: SVOX Pico (pico2wave, Debian package libttspico-utils, section
# non-free), the most natural offline voice in Debian's archive (en-US, de-DE).
# If the host has no pico2wave (its apt sources usually lack non-free), the
# script builds a small Debian chroot with mmdebstrap --components=main,non-free
# (like scripts/pbx.sh does for Asterisk) in $CC_TTS_ROOT (default
# .sandbox/tts-rootfs) and runs pico2wave and sox there. Needs root for that.
#
# Format: WAV, 8 kHz, mono, 16-bit signed PCM (Asterisk's "wav" format),
# Pico's own leading and trailing silence trimmed, peak-normalised to -3 dBFS,
# 100 ms of silence before and 150 ms after.
#
# Asterisk finds sounds/<lang>/cc-offer.wav as "sound:cc-offer" (ARI) or
# Playback(cc-offer) on a channel whose language is <lang>; scripts/pbx.sh
# copies them into the sandbox's <astdatadir>/sounds/<lang>/.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
OUT="$REPO/sounds"

# ------------------------------------------------------------------ texts
# name|English|German. Short on purpose: an agent hears them fifty times a day,
# and every key already works while a prompt plays.
PROMPTS=(
  "cc-offer|The line is busy. Press hash for a callback.|Besetzt. Für einen Rückruf die Raute drücken."
  "cc-offer-next-day|Busy. Press hash for a callback on the next calling day.|Besetzt. Rückruf am nächsten Werktag mit der Raute."
  "cc-confirm|OK. We'll call you back when the line is free.|In Ordnung, wir rufen zurück, sobald die Leitung frei ist."
  "cc-confirm-next-day|OK. We'll call you back on the next calling day.|In Ordnung. Wir rufen am nächsten Werktag zurück."
  "cc-closed|Busy. Outside calling hours, no callback.|Besetzt. Außerhalb der Anrufzeiten, kein Rückruf."
  "cc-queue-2|A colleague is already waiting for this number. You are second.|Ein Kollege wartet schon auf diese Nummer. Sie sind an zweiter Stelle."
  "cc-queue-3|Two colleagues are already waiting for this number. You are third.|Zwei Kollegen warten schon auf diese Nummer. Sie sind an dritter Stelle."
  "cc-queue-4|Three colleagues are already waiting for this number. You are fourth.|Drei Kollegen warten schon auf diese Nummer. Sie sind an vierter Stelle."
  "cc-queue-5|Four colleagues are already waiting for this number. You are fifth.|Vier Kollegen warten schon auf diese Nummer. Sie sind an fünfter Stelle."
  "cc-queue-many|Several colleagues are already waiting for this number.|Mehrere Kollegen warten schon auf diese Nummer."
  "cc-goodbye|No callback. Goodbye.|Kein Rückruf. Auf Wiederhören."
  "cc-full|Too many pending callbacks. None was added.|Zu viele offene Rückrufe. Es wurde keiner eingeplant."
  "cc-invalid|This number cannot be called back.|Diese Nummer kann nicht zurückgerufen werden."
  "cc-recall-intro|Callback.|Rückruf."
  "cc-recall-menu|Press 1 to connect, 2 for later, 3 to cancel.|Eins verbinden, zwei später, drei abbrechen."
  "cc-recall-number|The number:|Die Nummer:"
  "cc-no-callbacks|No callbacks for you.|Keine Rückrufe für Sie."
  "cc-recall-connecting|Connecting.|Sie werden verbunden."
  "cc-still-busy|Still busy. We'll try again later.|Noch besetzt. Wir versuchen es später."
  "cc-no-answer|No answer. We'll try again later.|Keine Antwort. Wir versuchen es später."
  "cc-snoozed|OK, we'll try again later.|In Ordnung, wir versuchen es später."
  "cc-cancelled|Callback cancelled.|Rückruf abgebrochen."
  "cc-pending-count|Callbacks pending:|Offene Rückrufe:"
  "cc-pending-menu|Press 1 to cancel the next callback, 2 to cancel all, or hang up.|Eins: nächsten Rückruf löschen, zwei: alle löschen, oder auflegen."
)

# Debian ships no German core sounds: digits for SayDigits()/say in German.
# "zwo" rather than "zwei": the telephone convention, never confused with "drei".
DE_DIGITS=(null eins zwo drei vier fünf sechs sieben acht neun)

# Pico voice per language
declare -A VOICE=([en]="en-US" [de]="de-DE")

# ------------------------------------------------------------------ tools
# RUN runs a command where pico2wave and sox are: on the host, or in the chroot.
TTS_ROOT="${CC_TTS_ROOT:-$REPO/.sandbox/tts-rootfs}"
WORK_HOST="" ; WORK_TOOL=""
if command -v pico2wave >/dev/null 2>&1 && command -v sox >/dev/null 2>&1; then
  RUN=()
  WORK_HOST="$(mktemp -d)"; WORK_TOOL="$WORK_HOST"
else
  if [ ! -x "$TTS_ROOT/usr/bin/pico2wave" ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v mmdebstrap >/dev/null 2>&1; then
      echo "make-prompts: no pico2wave; install libttspico-utils and sox (Debian non-free), or run as root with mmdebstrap" >&2
      exit 3
    fi
    echo "make-prompts: building a Debian chroot with SVOX Pico in $TTS_ROOT (main, non-free)"
    mkdir -p "$(dirname "$TTS_ROOT")"
    mmdebstrap --variant=apt --components=main,non-free --aptopt='Acquire::Retries "3"' \
      --include=libttspico-utils,sox bookworm "$TTS_ROOT" >"$TTS_ROOT.log" 2>&1 \
      || { echo "make-prompts: mmdebstrap failed; see $TTS_ROOT.log" >&2; exit 3; }
  fi
  RUN=(chroot "$TTS_ROOT")
  WORK_TOOL="/tmp/make-prompts.$$"
  WORK_HOST="$TTS_ROOT$WORK_TOOL"
  mkdir -p "$WORK_HOST"
fi
trap 'rm -rf "$WORK_HOST"' EXIT

# say <lang> <text> <out.wav>
say() {
  local lang="$1" text="$2" out="$3"
  mkdir -p "$(dirname "$out")"
  "${RUN[@]}" pico2wave -l "${VOICE[$lang]}" -w "$WORK_TOOL/raw.wav" -- "$text"
  # Trim Pico's silence at both ends, then the house format. -D: no dither, so
  # that the same text always gives the same bytes.
  "${RUN[@]}" sox -V1 -D "$WORK_TOOL/raw.wav" -b 16 -e signed-integer "$WORK_TOOL/out.wav" \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
      channels 1 rate -h 8000 norm -3 pad 0.1 0.15
  cp "$WORK_HOST/out.wav" "$out"
  printf '  %-28s %s\n' "${out#"$OUT"/}" "$text"
}

LANGS=("$@")
[ "${#LANGS[@]}" -gt 0 ] || LANGS=(en de)

for lang in "${LANGS[@]}"; do
  [ -n "${VOICE[$lang]:-}" ] || { echo "make-prompts: unknown language $lang" >&2; exit 2; }
  echo "make-prompts: $lang (SVOX Pico voice ${VOICE[$lang]})"
  for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r name en de <<<"$entry"
    case "$lang" in
      en) text="$en" ;;
      de) text="$de" ;;
    esac
    say "$lang" "$text" "$OUT/$lang/$name.wav"
  done
  if [ "$lang" = de ]; then
    for d in "${!DE_DIGITS[@]}"; do
      say de "${DE_DIGITS[$d]}" "$OUT/de/digits/$d.wav"
    done
  fi
done

# ----------------------------------------------------------------- README
duration() {
  cp "$1" "$WORK_HOST/len.wav"
  "${RUN[@]}" soxi -D "$WORK_TOOL/len.wav" 2>/dev/null | awk '{printf "%.1f s", $1}'
}
{
  cat <<'EOF'
# Voice prompts

Generated by `scripts/make-prompts.sh` with SVOX Pico (`pico2wave`, Debian's
`libttspico-utils` from non-free: the most natural offline voice in the
archive) and sox; do not edit the WAVs by hand: change the text in the script
and run it again. Committed so that neither the app nor the tests need a
speech synthesiser. Kept short: the offer about 3 s, the recall menu under
5 s and heard first (the number follows), since an agent may hear them fifty times a day (and keys work while they
play).

Format: WAV, 8 kHz, mono, 16-bit signed PCM — Asterisk's `wav` format.

Asterisk looks for a prompt in `<astdatadir>/sounds/<language>/`; on Debian
`astdatadir` is `/usr/share/asterisk`. `scripts/pbx.sh up` copies
`sounds/<lang>/*` there (for `en` the Debian path is a symlink to
`en_US_f_Allison`; the script resolves it). So ARI `sound:cc-offer` on a
channel with language `de` plays `de/cc-offer.wav`, and falls back to
`en/cc-offer.wav` for a language we have no prompt for.

German digits: Debian packages no German core sounds, so `de/digits/0..9`
are generated too ("zwo" for 2, the telephone convention). English digits
come from Asterisk's core sounds (`asterisk-core-sounds-en`).

| prompt | English | German | length (en / de) |
| --- | --- | --- | --- |
EOF
  for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r name en de <<<"$entry"
    printf '| `%s` | %s | %s | %s / %s |\n' "$name" "$en" "$de" \
      "$(duration "$OUT/en/$name.wav")" "$(duration "$OUT/de/$name.wav")"
  done
  printf '\n| German digit | text |\n| --- | --- |\n'
  for d in "${!DE_DIGITS[@]}"; do
    printf '| `de/digits/%s` | %s |\n' "$d" "${DE_DIGITS[$d]}"
  done
} >"$OUT/README.md"
echo "make-prompts: wrote $OUT/README.md"
