#!/usr/bin/env bash
# Builds the independent evaluation set: one file per source, from the Debian 12 (bookworm)
# packages that SPEC section 7 reserves for evaluation, so that nothing in it was trained or tuned
# on (the split is by source, not by the tail of a training file).
#
# Usage: scripts/rebuild-heldout.sh OUT_DIR [WORK_DIR]
#
#   OUT_DIR   gets the files below (earlier *.txt and random.bin there are removed first).
#   WORK_DIR  as for scripts/rebuild-broad-corpus.sh (default:
#             ${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora/work); .debs are kept and reused.
#
# How: `apt-get download` against a private apt state and `dpkg-deb -x`
# (scripts/lib/debian-packages.sh), nothing installed; scripts/lib/heldout_corpus.py holds the
# recipe and builds the files with python3's standard library.
#
# What is built: each file at most 400 KB. A source's documents (pages, source files, fortune
# files...) are cut at a line end to 40 KB each, taken in SHA-256-of-path order while they fit
# and written in path order (C locale), separated by one empty line; *_src and perl_pod files
# put a `==> path <==` line before each document. UTF-8, LF line ends, trailing blanks removed.
# In the *_docs and *_ui files a document is kept only when at least 20 % of its bytes are in the
# language's script (pages left in English are dropped).
#   ar_docs fa_docs ja_docs   Debian Administrator's Handbook (debian-handbook) in Arabic
#             (ar-MA), Persian (fa-IR), Japanese (ja-JP): page text of html/<lang>/*.html (the
#             Greek and Korean translations are mostly untranslated English, so not used)
#   hi_docs km_docs dz_docs   LibreOffice help in Hindi, Khmer, Dzongkha (Tibetan script):
#             text/**/*.html of libreoffice-help-hi/-km/-dz, page text
#   hy_ui ka_ui si_ui my_ui   Firefox ESR language packs in Armenian, Georgian, Sinhala, Burmese
#             (firefox-esr-l10n-hy-am/-ka/-si/-my): the values of every .ftl and .properties file
#             in the .xpi, one message or attribute a line, keys and comments dropped
#   en_python_docs    python3.11-doc tutorial/, howto/, faq/ HTML, page text (English prose)
#   rst_docs          python3.11-doc _sources/library/ and reference/ reStructuredText
#   python_src.py     the Python 3.11 standard library, *.py of libpython3.11-stdlib
#   c_src             *.c of the glibc source tarball in glibc-source
#   perl_pod          perl-doc's pod/*.pod
#   en_gcide          dict-gcide's dictd text (gcide.dict.dz): 16 evenly spaced slices, A to Z
#   de_quotes ru_quotes zh_quotes   fortunes-de/-ru/-zh fortune files (not the .dat indexes, not
#             the offensive off/ sets)
#   random.bin        256 KiB of SHA-256 counter-mode bytes, seed 'bltpatch held-out random'
#                     (the broad training set uses another seed)
# Khmer, Tibetan (Dzongkha), Armenian, Georgian, Sinhala and Myanmar are the scripts that
# scripts/rebuild-broad-corpus.sh leaves out, so these files measure a model on unseen scripts.
# At the end the script prints each file's size and a Unicode script histogram.
#
# What is NOT guaranteed: the same bytes on a later date (apt-get download takes the newest
# bookworm version; debian-handbook, libreoffice-help-* and firefox-esr-l10n-* get updates). The
# versions used are kept in WORK_DIR/versions-heldout.txt. 16 packages, about 106 MB of downloads.
set -euo pipefail
export LC_ALL=C PYTHONDONTWRITEBYTECODE=1
umask 022

die() { echo "rebuild-heldout: error: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 OUT_DIR [WORK_DIR]"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
work=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora/work}
for tool in apt-get python3; do
    command -v "$tool" >/dev/null || die "'$tool' is needed but not found (this script expects a Debian-like system)"
done
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)
start=$(date +%s)

mapfile -t packages < <(python3 "$script_dir/lib/heldout_corpus.py" packages)
((${#packages[@]})) || die "the recipe lists no packages"

# shellcheck source=lib/debian-packages.sh
. "$script_dir/lib/debian-packages.sh"
deb_init "$work"
deb_fetch "${packages[@]}"
echo "== unpacking ${#packages[@]} packages into $work/x"
deb_unpack "$work/versions-heldout.txt" "${packages[@]}"

echo "== building $out"
tmp=$out/.partial
rm -rf "$tmp" && mkdir -p "$tmp"
nice -n 10 python3 "$script_dir/lib/heldout_corpus.py" build "$work/x" "$tmp"
rm -f "$out"/*.txt "$out"/random.bin
mv "$tmp"/* "$out"/
rm -rf "$tmp"

echo
echo "done in $(($(date +%s) - start)) s; output in $out (package versions: $work/versions-heldout.txt)"
python3 "$script_dir/lib/corpus_tool.py" hist "$out"/*.txt "$out"/random.bin
