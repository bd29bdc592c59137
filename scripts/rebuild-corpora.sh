#!/usr/bin/env bash
# Rebuilds the larger reference corpora (en_books, en_docs, de_docs, fr_docs, ru_docs, zh_docs,
# code_rust, structured; see shared/corpora/README.md) from Debian 12 (bookworm) `main` packages.
#
# Usage: scripts/rebuild-corpora.sh OUT_DIR [WORK_DIR]
#
#   OUT_DIR   gets en_books.txt en_docs.txt de_docs.txt fr_docs.txt ru_docs.txt zh_docs.txt
#             code_rust.txt structured.txt (UTF-8, LF line endings). Nothing else is written there.
#   WORK_DIR  downloaded .deb files, their extracted trees, a private apt state and helper scripts
#             (default: ${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora). Downloaded .debs are kept
#             and reused, so a second run needs no network and gives the same bytes.
#
# How: the packages are DOWNLOADED with `apt-get download` (against a private apt state in
# WORK_DIR: its own sources list for deb.debian.org bookworm, bookworm-updates and
# bookworm-security, its own package lists; the system's apt configuration, lists and dpkg
# database are neither read for selection nor changed) and EXTRACTED with `dpkg-deb -x` (or
# `ar` + `tar`). Nothing is installed. One exception to "only data is used": the King James Bible
# is stored in bible-kjv-text in a private compressed format, so the `bible` reader from the
# bible-kjv package (plus libreadline8) is extracted into WORK_DIR and run from there. HTML is
# turned into text by a small python3 (stdlib html.parser) converter embedded below.
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (archive URLs), REF_DIR (see below).
#
# What is built (files in C-locale sorted order everywhere):
#   en_books    Jane Austen's six novels (r-cran-janeaustenr: the character vectors decoded from
#               the package's R lazy-load database data/Rdata.rdb, books in name order, one line
#               per element), the KJV Bible (`bible Gen1:1-Rev22:21`, one verse a line, trailing
#               blanks removed), the Devil's Dictionary (dict-devil's devil.dict.dz, the dictd
#               source text), the Jargon File (jargon-text's jargon.txt.gz), and every fortune
#               file of `fortunes` (not the .dat indexes); parts separated by one empty line.
#   *_docs      the Debian Administrator's Handbook HTML of that language (debian-handbook:
#               html/{en-US,de-DE,fr-FR,ru-RU,zh-CN}/*.html) followed by the LibreOffice help
#               pages text/shared/** and text/swriter/** (libreoffice-help-{en-us,de,fr,ru,zh-cn}),
#               each page converted to text (navigation, tables of contents, scripts and
#               "Related Topics" headings dropped; block elements become paragraphs separated by
#               an empty line; <pre> keeps its layout); pages separated by one empty line.
#   code_rust   every *.rs under library/{alloc,core,panic_abort,panic_unwind,proc_macro,std,test,
#               unwind} of rust-src (rustc 1.63), each preceded by `==> library/... <==`.
#   structured  each file preceded by `==> LABEL <==` (labels as in the reference):
#               iso-codes json/iso_*.json; python3-botocore data/<service>/<version>/service-2.json
#               for the first 11 services in name order; ieee-data oui.csv, first 8,429 lines;
#               all fail2ban test logs (tests/files/logs/**); unicode-data UnicodeData.txt, first
#               9,188 lines (up to U+277F); tzdata zoneinfo/tzdata.zi; publicsuffix
#               public_suffix_list.dat. CR LF becomes LF and a missing final newline is added.
#   (tiny.txt is not rebuilt: it is a hand-made mix and small enough to ship in datasets/.)
#
# What is NOT guaranteed: byte-identical output. How the reference files in shared/corpora were
# extracted is not documented; this script reverse-engineers their visible layout (file choice,
# order, separators, the cuts of oui.csv and UnicodeData.txt, the HTML whitespace rules). When
# this script was written, with the package versions then newest in bookworm (tzdata 2026f-0+deb12u1,
# libreoffice-help-* 4:7.4.7-1+deb12u14, the rest as released), all eight files came out
# byte-identical to shared/corpora/SHA256SUMS. But apt-get download takes whatever version the
# archive serves as newest at the time, and tzdata and libreoffice-help-* get point/security
# updates, so a later run can differ (structured.txt and the *_docs files first). Running the
# downloaded `bible` binary needs an amd64 (or other Debian-supported) host whose libc is at least
# bookworm's. At the end the script prints every file's byte count next to the reference README's,
# and whether it is byte-identical to the reference file when that is found (REF_DIR, default:
# <repo>/../shared/corpora).
set -euo pipefail
export LC_ALL=C
umask 022

die() { echo "rebuild-corpora: error: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 OUT_DIR [WORK_DIR]"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
work=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/bltpatch-corpora}
ref_dir=${REF_DIR:-$script_dir/../../shared/corpora}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

for tool in apt-get python3 tar; do
    command -v "$tool" >/dev/null || die "'$tool' is needed but not found (this script expects a Debian-like system)"
done
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)
start=$(date +%s)

# Packages holding the corpora, then the helpers needed to read the Bible.
packages=(
    r-cran-janeaustenr bible-kjv-text dict-devil jargon-text fortunes
    debian-handbook libreoffice-help-en-us libreoffice-help-de libreoffice-help-fr
    libreoffice-help-ru libreoffice-help-zh-cn
    rust-src
    iso-codes python3-botocore ieee-data fail2ban unicode-data tzdata publicsuffix
    bible-kjv libreadline8
)

# ---------------------------------------------------------------------------------------------
# Download (private apt state; only missing .debs are fetched) and extract.
# ---------------------------------------------------------------------------------------------
apt_dir=$work/apt
debs=$work/debs
mkdir -p "$debs" "$apt_dir"/{lists/partial,cache/archives/partial,empty.d} "$apt_dir/etc"
: > "$apt_dir/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=
[[ -r $keyring ]] && signed=" [signed-by=$keyring]"
cat > "$apt_dir/etc/sources.list" <<EOF
deb$signed $mirror bookworm main
deb$signed $mirror bookworm-updates main
deb$signed $security_mirror bookworm-security main
EOF
unset APT_CONFIG
apt_opts=(
    -q -o "Dir::Etc::main=/dev/null" -o "Dir::Etc::parts=$apt_dir/empty.d"
    -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/empty.d"
    -o "Dir::Etc::preferences=/dev/null" -o "Dir::Etc::preferencesparts=$apt_dir/empty.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=$(id -un)"
)

cached_deb() { # prints the one cached .deb of package $1, if any
    local f
    for f in "$debs/$1"_*.deb; do [[ -f $f ]] && { echo "$f"; return; }; done
}

missing=()
for p in "${packages[@]}"; do [[ -n $(cached_deb "$p") ]] || missing+=("$p"); done
if ((${#missing[@]})); then
    echo "== updating a private apt package list in $apt_dir"
    apt-get "${apt_opts[@]}" --error-on=any update >"$apt_dir/update.log" 2>&1 ||
        die "apt-get update failed: $(grep -m1 -E '^(E|W|Err):' "$apt_dir/update.log" || tail -n1 "$apt_dir/update.log")"
    tmp=$debs/.partial
    for p in "${missing[@]}"; do
        echo "== downloading $p"
        rm -rf "$tmp" && mkdir -p "$tmp"
        (cd "$tmp" && apt-get "${apt_opts[@]}" download "$p" >"$tmp.log" 2>&1) ||
            die "cannot download Debian package '$p': $(grep -m1 '^E:' "$tmp.log" || tail -n1 "$tmp.log")"
        f=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
        [[ -n $f ]] || die "cannot download Debian package '$p': no .deb came back"
        mv "$f" "$debs/"
    done
    rm -rf "$tmp" "$tmp.log"
fi

x=$work/x
mkdir -p "$x"
: > "$work/versions.txt"
for p in "${packages[@]}"; do
    deb=$(cached_deb "$p")
    # .deb names are PKG_VERSION_ARCH.deb (":" of an epoch written as %3a)
    v=${deb##*/}; v=${v#"${p}"_}; v=${v%_*.deb}; v=${v//%3a/:}
    printf '%-24s %s\n' "$p" "$v" >> "$work/versions.txt"
    if [[ $(cat "$x/$p/.extracted" 2>/dev/null) != "${deb##*/}" ]]; then
        rm -rf "${x:?}/$p" && mkdir -p "$x/$p"
        if command -v dpkg-deb >/dev/null; then
            dpkg-deb -x "$deb" "$x/$p" || die "cannot extract $deb"
        else
            command -v ar >/dev/null || die "need dpkg-deb or ar to extract $deb"
            member=$(ar t "$deb" | grep '^data\.tar') || die "no data.tar member in $deb"
            (cd "$x/$p" && ar x "$deb" "$member" && tar -xf "$member" && rm -f "$member") ||
                die "cannot extract $deb"
        fi
        echo "${deb##*/}" > "$x/$p/.extracted"
    fi
done
echo "== package versions used (also in $work/versions.txt)"
sed 's/^/   /' "$work/versions.txt"

# ---------------------------------------------------------------------------------------------
# Helper: R lazy-load database reader, HTML-to-text converter, header concatenation, checks.
# ---------------------------------------------------------------------------------------------
tool=$work/corpora_tool.py
cat > "$tool" <<'PYEOF'
"""Helpers for scripts/rebuild-corpora.sh (python3 standard library only)."""
import bz2, gzip, html.parser, lzma, os, re, struct, sys, zlib

# --- R serialization (XDR), enough for the character vectors of janeaustenr ---------------
class RReader:
    def __init__(self, b):
        self.b, self.p, self.refs = b, 0, []
    def int(self):
        v = struct.unpack_from('>i', self.b, self.p)[0]; self.p += 4; return v
    def raw(self, n):
        v = self.b[self.p:self.p + n]; self.p += n; return v
    def header(self):
        if self.raw(2) != b'X\n': raise ValueError('not an XDR R serialization')
        version = self.int(); self.int(); self.int()
        if version == 3: self.raw(self.int())
    def length(self):
        n = self.int()
        if n == -1: n = (self.int() << 32) + self.int()
        return n
    def item(self):
        flags = self.int(); t = flags & 0xff
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t in (254, 253, 252, 251, 250, 242, 241): return None
        if t == 255: return self.refs[((flags >> 8) or self.int()) - 1]
        if t == 1:
            v = self.item(); self.refs.append(v); return v
        if t == 9:
            n = self.int()
            if n == -1: return None
            return self.raw(n).decode('latin-1' if (flags >> 12) & 4 else 'utf-8')
        if t in (2, 6, 17):
            if has_attr: self.item()
            tag = self.item() if has_tag else None
            car = self.item(); cdr = self.item()
            return [(tag, car)] + (cdr if isinstance(cdr, list) else [])
        if t in (16, 19, 20):
            v = [self.item() for _ in range(self.length())]
        elif t in (10, 13):
            n = self.length(); v = list(struct.unpack_from('>%di' % n, self.b, self.p)); self.p += 4 * n
        elif t == 14:
            n = self.length(); v = list(struct.unpack_from('>%dd' % n, self.b, self.p)); self.p += 8 * n
        elif t == 24:
            v = self.raw(self.length())
        else:
            raise ValueError('unsupported R object type %d' % t)
        if has_attr:
            attrs = dict(self.item())
            if t == 19 and 'names' in attrs: v = dict(zip(attrs['names'], v))
        return v

def unserialize(b):
    r = RReader(b); r.header(); return r.item()

def austen(stem):
    """All character vectors of an R lazy-load database (STEM.rdx/.rdb), in name order."""
    index = unserialize(gzip.decompress(open(stem + '.rdx', 'rb').read()))
    db = open(stem + '.rdb', 'rb').read()
    comp = index.get('compressed') or [1]
    comp = int(comp[0]) if isinstance(comp, list) else int(comp)
    lines = []
    for name in sorted(index['variables']):
        off, n = index['variables'][name]
        blob = db[off:off + n]
        if comp == 1: data = zlib.decompress(blob[4:])
        else:
            data = {b'Z': zlib.decompress, b'2': bz2.decompress, b'X': lzma.decompress,
                    b'0': lambda d: d}[blob[4:5]](blob[5:])
        v = unserialize(data)
        if isinstance(v, list) and all(isinstance(s, str) for s in v):
            lines += v
    sys.stdout.write('\n'.join(lines) + '\n')

# --- HTML to text -----------------------------------------------------------------------------
BLOCK = set('address article aside blockquote body caption dd details div dl dt fieldset '
            'figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html li main nav ol p '
            'pre section summary table tbody td tfoot th thead tr ul'.split())
VOID = set('area base br col embed hr img input link meta param source track wbr'.split())
SKIP_TAGS = set('head script style noscript title header aside footer nav template'.split())
SKIP_IDS = {'banner', 'title', 'SearchFrame', 'DonationFrame', 'DEBUG'}   # handbook, LO help
SKIP_CLASSES = {'docnav', 'toc', 'related'}

class HtmlText(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip, self.pre = [], None, 0
    def skipped(self, tag, attrs):
        a = dict(attrs)
        return (tag in SKIP_TAGS or a.get('id') in SKIP_IDS
                or bool(SKIP_CLASSES & set((a.get('class') or '').split())))
    def handle_starttag(self, tag, attrs):
        if self.skip:
            if tag == self.skip[0] and tag not in VOID: self.skip[1] += 1
            return
        if tag not in VOID and self.skipped(tag, attrs):
            self.skip = [tag, 1]; return
        if tag == 'br' or tag in BLOCK: self.parts.append('\n')
        if tag == 'pre': self.pre += 1
    def handle_startendtag(self, tag, attrs):
        if not self.skip and (tag == 'br' or tag in BLOCK): self.parts.append('\n')
    def handle_endtag(self, tag):
        if self.skip:
            if tag == self.skip[0]:
                self.skip[1] -= 1
                if not self.skip[1]: self.skip = None
            return
        if tag == 'pre' and self.pre: self.pre -= 1
        if tag in BLOCK: self.parts.append('\n')
    def handle_data(self, data):
        if self.skip: return
        if self.pre: self.parts.append(data)
        else: self.parts.append(re.sub(r'[ \t\n\r\f]+', ' ', data))  # not U+00A0

def html_to_text(src):
    p = HtmlText(); p.feed(src); p.close()
    # Per line: drop trailing white space and an indent of 1 to 3 spaces (this is what the
    # reference corpora do; deeper indents, as in <pre> blocks, stay).
    t = '\n'.join(re.sub(r'^ {1,3}(?! )', '', l.rstrip()) for l in ''.join(p.parts).split('\n'))
    t = re.sub(r'\n{3,}', '\n\n', t).strip('\n')
    return t + '\n' if t else ''

def html(list_file):
    names = [l for l in open(list_file, encoding='utf-8').read().split('\n') if l]
    texts = (html_to_text(open(f, encoding='utf-8', errors='replace').read()) for f in names)
    sys.stdout.write('\n'.join(t for t in texts if t))

# --- concatenation ----------------------------------------------------------------------------
def normalize(b):
    b = b.replace(b'\r\n', b'\n')
    return b if b.endswith(b'\n') or not b else b + b'\n'

def join(*paths):
    """Files separated by one empty line."""
    out = sys.stdout.buffer
    for i, f in enumerate(paths):
        if i: out.write(b'\n')
        out.write(normalize(open(f, 'rb').read()))

def heads(list_file):
    """Lines 'LABEL<TAB>PATH[<TAB>MAX_LINES]': each file after a '==> LABEL <==' line."""
    out = sys.stdout.buffer
    for line in open(list_file, encoding='utf-8').read().split('\n'):
        if not line: continue
        label, path, *cap = line.split('\t')
        b = normalize(open(path, 'rb').read())
        if cap: b = b''.join(b.splitlines(True)[:int(cap[0])])
        out.write(('==> %s <==\n' % label).encode() + b)

def check(path):
    b = open(path, 'rb').read()
    try: b.decode('utf-8')
    except UnicodeDecodeError as e: sys.exit('%s: not UTF-8 (%s)' % (path, e))
    if b'\r' in b: sys.exit('%s: contains CR' % path)
    if not b or not b.endswith(b'\n'): sys.exit('%s: empty or no final newline' % path)

if __name__ == '__main__':
    globals()[sys.argv[1]](*sys.argv[2:])
PYEOF

py() { python3 "$tool" "$@"; }
# sorted list of files under the given dirs matching a find expression (C collation)
list() { find "$@" | sort; }
tmpd=$work/tmp
rm -rf "$tmpd" && mkdir -p "$tmpd"
emit() { # emit NAME: moves $tmpd/NAME.txt into OUT_DIR after checking it
    py check "$tmpd/$1.txt" || die "$1.txt failed its UTF-8 / line-ending check"
    mv -f "$tmpd/$1.txt" "$out/$1.txt"
    echo "== wrote $out/$1.txt"
}

# ---------------------------------------------------------------------------------------------
# en_books
# ---------------------------------------------------------------------------------------------
py austen "$x/r-cran-janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata" > "$tmpd/austen.txt" ||
    die "cannot decode r-cran-janeaustenr's data/Rdata.rdb"
readline_dir=$(dirname "$(find "$x/libreadline8" -name 'libreadline.so.8*' | sort | head -n1)")
if ! LD_LIBRARY_PATH=$readline_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} HOME=$tmpd \
    "$x/bible-kjv/usr/bin/bible" -l 1000000 -p "$x/bible-kjv-text/usr/lib" 'Gen1:1-Rev22:21' \
    </dev/null >"$tmpd/bible.raw" 2>"$tmpd/bible.err" || [[ $(wc -l < "$tmpd/bible.raw") -lt 30000 ]]; then
    die "the bible reader from bible-kjv failed: $(tr '\n' ' ' < "$tmpd/bible.err" | head -c 300)"
fi
sed -E 's/[[:space:]]+$//' "$tmpd/bible.raw" > "$tmpd/bible.txt"
gzip -dc "$x/dict-devil/usr/share/dictd/devil.dict.dz" > "$tmpd/devil.txt"
gzip -dc "$x/jargon-text/usr/share/doc/jargon-text/jargon.txt.gz" > "$tmpd/jargon.txt"
mapfile -t fortune_files < <(list "$x/fortunes/usr/share/games/fortunes" -type f ! -name '*.dat')
((${#fortune_files[@]})) || die "no fortune files found in the fortunes package"
py join "$tmpd/austen.txt" "$tmpd/bible.txt" "$tmpd/devil.txt" "$tmpd/jargon.txt" \
    "${fortune_files[@]}" > "$tmpd/en_books.txt"
emit en_books

# ---------------------------------------------------------------------------------------------
# {en,de,fr,ru,zh}_docs
# ---------------------------------------------------------------------------------------------
handbook=$x/debian-handbook/usr/share/doc/debian-handbook/html
for spec in en:en-US:en-us:en-US de:de-DE:de:de fr:fr-FR:fr:fr ru:ru-RU:ru:ru zh:zh-CN:zh-cn:zh-CN; do
    IFS=: read -r lang hb_lang lo_pkg lo_lang <<<"$spec"
    lo=$x/libreoffice-help-$lo_pkg/usr/share/libreoffice/help/$lo_lang/text
    [[ -d $handbook/$hb_lang && -d $lo/swriter ]] || die "missing HTML for $lang in the extracted packages"
    {
        list "$handbook/$hb_lang" -maxdepth 1 -type f -name '*.html'
        list "$lo/shared" "$lo/swriter" -type f -name '*.html'
    } > "$tmpd/${lang}_docs.list"
    py html "$tmpd/${lang}_docs.list" > "$tmpd/${lang}_docs.txt"
    emit "${lang}_docs"
done

# ---------------------------------------------------------------------------------------------
# code_rust
# ---------------------------------------------------------------------------------------------
rust_root=$(find "$x/rust-src/usr/src" -mindepth 1 -maxdepth 1 -type d -name 'rustc-*' | sort | head -n1)
[[ -n $rust_root ]] || die "no usr/src/rustc-* in rust-src"
(cd "$rust_root" && find library/{alloc,core,panic_abort,panic_unwind,proc_macro,std,test,unwind} \
    -type f -name '*.rs' | sort | awk -v r="$rust_root" '{ print $0 "\t" r "/" $0 }') > "$tmpd/code_rust.list"
py heads "$tmpd/code_rust.list" > "$tmpd/code_rust.txt"
emit code_rust

# ---------------------------------------------------------------------------------------------
# structured
# ---------------------------------------------------------------------------------------------
botocore=$x/python3-botocore/usr/lib/python3/dist-packages/botocore/data
f2b_logs=$x/fail2ban/usr/lib/python3/dist-packages/fail2ban/tests/files/logs
label_list() { # label_list PREFIX BASE [find args]: "PREFIX/relpath<TAB>abspath" lines, sorted
    local prefix=$1 base=$2; shift 2
    (cd "$base" && find . "$@" | sed 's|^\./||' | sort | awk -v p="$prefix" -v b="$base" '{ print p "/" $0 "\t" b "/" $0 }')
}
{
    label_list iso-codes/json "$x/iso-codes/usr/share/iso-codes/json" -type f -name 'iso_*.json'
    services=$(find "$botocore" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | head -n 11)
    # shellcheck disable=SC2086
    (cd "$botocore" && find $services -type f -name service-2.json | sort |
        awk -v b="$botocore" '{ print "botocore/data/" $0 "\t" b "/" $0 }')
    printf 'ieee-data/oui.csv\t%s\t8429\n' "$x/ieee-data/usr/share/ieee-data/oui.csv"
    label_list logs "$f2b_logs" -type f
    printf 'unicode/UnicodeData.txt\t%s\t9188\n' "$x/unicode-data/usr/share/unicode/UnicodeData.txt"
    printf 'tzdata/usr/share/zoneinfo/tzdata.zi\t%s\n' "$x/tzdata/usr/share/zoneinfo/tzdata.zi"
    printf 'publicsuffix/usr/share/publicsuffix/public_suffix_list.dat\t%s\n' \
        "$x/publicsuffix/usr/share/publicsuffix/public_suffix_list.dat"
} > "$tmpd/structured.list"
py heads "$tmpd/structured.list" > "$tmpd/structured.txt"
emit structured

rm -rf "$tmpd"

# ---------------------------------------------------------------------------------------------
# Report: sizes next to the reference README's.
# ---------------------------------------------------------------------------------------------
declare -A ref_bytes=(
    [en_books]=12867058 [en_docs]=3092945 [de_docs]=3665623 [fr_docs]=3664065
    [ru_docs]=4554510 [zh_docs]=2862957 [code_rust]=11169588 [structured]=4763763
)
echo
echo "done in $(($(date +%s) - start)) s; output in $out"
printf '%-16s %12s %12s %8s  %s\n' file bytes reference diff identical
for f in en_books en_docs de_docs fr_docs ru_docs zh_docs code_rust structured; do
    n=$(wc -c < "$out/$f.txt")
    r=${ref_bytes[$f]}
    same=-
    if [[ -f $ref_dir/$f.txt ]]; then
        cmp -s "$out/$f.txt" "$ref_dir/$f.txt" && same=yes || same=no
    fi
    printf '%-16s %12s %12s %+7.2f%%  %s\n' "$f.txt" "$n" "$r" \
        "$(python3 -c "print(($n - $r) * 100 / $r)")" "$same"
done
