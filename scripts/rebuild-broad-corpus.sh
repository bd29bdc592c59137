#!/usr/bin/env bash
# Builds the broad training corpus for the default entropy model from Debian 12 (bookworm) `main`
# packages: many natural languages and scripts, programming languages other than C, C++, Python
# and Perl, markup, data formats, and a small share of bytes that are not text.
#
# Usage: scripts/rebuild-broad-corpus.sh OUT_DIR [WORK_DIR]
#
#   OUT_DIR   gets lang_<code>.txt (one per language), code_<language>.txt, markup_<format>.txt,
#             data_<format>.txt, binary.bin, and SOURCES.tsv (file, source package or label,
#             documents, bytes); earlier lang_/code_/markup_/data_ files are removed first.
#   WORK_DIR  downloaded .deb files, their extracted trees and a private apt state (default:
#             ${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora/work, shared with
#             scripts/rebuild-heldout.sh). Downloaded .debs are kept and reused, so a second run
#             needs no network and gives the same bytes.
#
# The shared reference corpora (../shared/corpora) are meant to be trained on together with this
# set; none of their packages is read here (debian-handbook, libreoffice-help-*, rust-src, the
# English books and structured-data packages; iso-codes only for its .mo translations, not its
# JSON). Packages that SPEC section 7 reserves for evaluation are refused: the script stops with
# an error if one is ever in its list (check_package below).
#
# How: packages are DOWNLOADED with `apt-get download` against a private apt state and EXTRACTED
# with `dpkg-deb -x` (scripts/lib/debian-packages.sh); nothing is installed and the system's apt
# state is untouched. scripts/lib/broad_corpus.py holds the recipe (package lists, globs, caps)
# and builds the files with python3's standard library (scripts/lib/corpus_tool.py: HTML, Mallard
# and roff to text, .mo decoding, capped selection).
#
# What is built (all text UTF-8, LF line ends, trailing blanks removed, documents separated by one
# empty line; code/markup/data documents start with a `==> package/path <==` line):
#   lang_<code>.txt  one file per language (codes in broad_corpus.LANGS: ISO 639-1, plus zh_CN and
#             zh_TW), from: translated man pages (manpages-<l10n>, requests dropped, text kept),
#             debian-reference-*, maint-guide*, developers-reference*, debian-faq* and
#             installation-guide-amd64 HTML (page text), GNOME help (gnome-user-docs Mallard pages,
#             text), the msgstr strings of the .mo catalogues of 30 common packages, hunspell word
#             lists (every k-th word, for languages with little prose) and fortunes-es/it/pl/bg/cs.
#             Caps: 150 KB a document (cut at a line end); per source and language 1.2 MB man
#             pages, 1 MB debian-reference, 0.8 MB each for the Debian guides, the installation
#             guide and GNOME help, 1 MB messages, 0.3 MB words, 0.5 MB fortunes; 3 MB a language,
#             shared between its sources by water-filling (equal shares, what a small source leaves
#             goes to the others).
#   code_<lang>.txt  Go, Java, JavaScript, TypeScript, shell (sh, bash, zsh and fish), Ruby,
#             Haskell (GHC's hyperlinked source pages, text), OCaml, Lua, Tcl, Emacs Lisp, Scheme
#             (Guile), Erlang, PHP, Common Lisp (SBCL), Prolog (SWI), Vim script, Octave, CMake;
#             1.5-3 MB each.
#   markup_<fmt>.txt html (raw HTML), markdown, rst, latex (.sty/.cls/.tex/...), xml (XSL, SVG,
#             Mallard, AppStream, GSettings schemas), roff (English man page sources).
#   data_<fmt>.txt   json, yaml, csv, toml (Cargo.toml of librust-*-dev packages; no Rust code),
#             ini (systemd units, .desktop, php.ini, .ini, .conf), logs (Debian changelogs),
#             tables (nmap, xkb, hwdata, distro-info).
#   binary.bin       2 MB of compressed files from the packages (.gz .xz .png, the first 64 KB
#             of each, in SHA-256-of-path order) then 2 MB of SHA-256 counter-mode bytes (seed
#             'bltpatch broad corpus'): 2.1 % of the total, so that the model learns a near
#             uniform distribution where nothing is predictable.
# In all 105 files, 191 MB when written (datasets/BROAD.md has every file's size and sources).
# Selection: when a source holds more than its cap, its documents are taken in SHA-256-of-path
# order while they fit, then written in path order (C locale), so the pick is spread over the
# source and depends only on the packages' bytes.
# Never taken: files named like C, C++, Python or Perl sources (.c .h .cc .cpp .py .pl .pm .pod
# ...; .pl only as Prolog from swi-prolog-core); any line holding a character of the scripts that
# the held-out set keeps unseen (Armenian, Georgian, Khmer, Sinhala, Myanmar, Tibetan), so that
# they stay absent; languages written in them are not in the language list.
#
# What is NOT guaranteed: the same bytes on a later date. apt-get download takes the version the
# archive serves as newest, and some of these packages get point and security updates; the
# versions used are kept in WORK_DIR/versions-broad.txt. The sizes are caps: a language or a
# format has less where its packages hold less. 182 packages, about 365 MB of downloads and 2.2 GB
# unpacked in WORK_DIR; two to three minutes on two cores once downloaded.
set -euo pipefail
export LC_ALL=C PYTHONDONTWRITEBYTECODE=1
umask 022

die() { echo "rebuild-broad-corpus: error: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 OUT_DIR [WORK_DIR]"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
work=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora/work}
for tool in apt-get python3 find; do
    command -v "$tool" >/dev/null || die "'$tool' is needed but not found (this script expects a Debian-like system)"
done
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)
start=$(date +%s)

# SPEC section 7: reserved for independent evaluation, never to be trained or tuned on. Also the
# packages of the shared reference corpora, which the trainer gets as they are.
check_package() {
    case $1 in
        debian-handbook | libreoffice-help-* | libreoffice-l10n-* | python3.11-doc | perl-doc | \
            dict-gcide | fortunes-de | fortunes-ru | fortunes-zh | firefox-esr-l10n-* | \
            thunderbird-l10n-* | glibc-source | libpython3.11* | python3.11* | idle-python3.11)
            die "package '$1' is reserved for evaluation (SPEC section 7) and must not be in the training set" ;;
        rust-src | r-cran-janeaustenr | bible-kjv* | dict-devil | jargon-text | fortunes | \
            python3-botocore | ieee-data | fail2ban | unicode-data | tzdata | publicsuffix)
            die "package '$1' is already in the shared reference corpora" ;;
    esac
}

mapfile -t packages < <(python3 "$script_dir/lib/broad_corpus.py" packages)
((${#packages[@]} > 100)) || die "the recipe lists only ${#packages[@]} packages"
for p in "${packages[@]}"; do check_package "$p"; done

# shellcheck source=lib/debian-packages.sh
. "$script_dir/lib/debian-packages.sh"
deb_init "$work"
deb_fetch "${packages[@]}"
echo "== unpacking ${#packages[@]} packages into $work/x"
deb_unpack "$work/versions-broad.txt" "${packages[@]}"

echo "== building $out"
tmp=$out/.partial
rm -rf "$tmp" && mkdir -p "$tmp"
nice -n 10 python3 "$script_dir/lib/broad_corpus.py" build "$work/x" "$tmp"
rm -f "$out"/lang_*.txt "$out"/code_*.txt "$out"/markup_*.txt "$out"/data_*.txt "$out"/binary.bin
mv "$tmp"/* "$out"/
rm -rf "$tmp"

# Checks: every text file is UTF-8 without CR or NUL and ends with a newline; no held-out script.
python3 - "$out" "$script_dir/lib" <<'PYEOF' || die "output check failed"
import os, sys
sys.path.insert(0, sys.argv[2])
import corpus_tool as ct
out, bad = sys.argv[1], 0
for name in sorted(os.listdir(out)):
    if not name.endswith('.txt'):
        continue
    b = open(os.path.join(out, name), 'rb').read()
    t = b.decode('utf-8')
    if b'\r' in b or b'\0' in b or not b.endswith(b'\n'):
        print('%s: CR, NUL or no final newline' % name); bad += 1
    if ct.heldout_re().search(t):
        print('%s: holds a character of a held-out script' % name); bad += 1
sys.exit(1 if bad else 0)
PYEOF

echo
echo "done in $(($(date +%s) - start)) s; output in $out (package versions: $work/versions-broad.txt)"
total=0
for f in "$out"/*.txt "$out"/binary.bin; do
    [[ $f == */SOURCES.tsv ]] && continue
    n=$(wc -c < "$f"); total=$((total + n))
    printf '%-24s %12d\n' "${f##*/}" "$n"
done
printf '%-24s %12d\n' total "$total"
