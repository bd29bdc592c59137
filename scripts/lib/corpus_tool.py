"""Text extraction helpers for scripts/rebuild-broad-corpus.sh and scripts/rebuild-heldout.sh.

Python 3 standard library only. Every helper is deterministic: files are visited in C-locale
sorted path order, capped selections depend only on the paths (SHA-256 order) and the bytes, and
pseudo-random bytes come from SHA-256 in counter mode.

Subcommands (python3 corpus_tool.py NAME ARGS...):
    hist FILE...          a Unicode script histogram per file (markdown table on stdout)
    totals FILE...        UTF-8 bytes per script over all the files together
    random SEED BYTES     BYTES pseudo-random bytes: SHA-256(SEED || counter) blocks, on stdout
"""
import bisect, gzip, hashlib, html, html.parser, lzma, os, re, struct, sys, unicodedata

# --- Unicode scripts --------------------------------------------------------------------------
# (first, last, script) for the blocks that matter here; anything else counts by its category.
BLOCKS = [
    (0x0000, 0x007F, 'ASCII'), (0x0080, 0x024F, 'Latin'), (0x0250, 0x02AF, 'Latin'),
    (0x1E00, 0x1EFF, 'Latin'), (0x2C60, 0x2C7F, 'Latin'), (0xA720, 0xA7FF, 'Latin'),
    (0x0370, 0x03FF, 'Greek'), (0x1F00, 0x1FFF, 'Greek'),
    (0x0400, 0x052F, 'Cyrillic'), (0x2DE0, 0x2DFF, 'Cyrillic'), (0xA640, 0xA69F, 'Cyrillic'),
    (0x0530, 0x058F, 'Armenian'), (0xFB13, 0xFB17, 'Armenian'),
    (0x0590, 0x05FF, 'Hebrew'), (0xFB1D, 0xFB4F, 'Hebrew'),
    (0x0600, 0x06FF, 'Arabic'), (0x0750, 0x077F, 'Arabic'), (0x08A0, 0x08FF, 'Arabic'),
    (0xFB50, 0xFDFF, 'Arabic'), (0xFE70, 0xFEFF, 'Arabic'),
    (0x0700, 0x074F, 'Syriac'), (0x0780, 0x07BF, 'Thaana'), (0x07C0, 0x07FF, 'NKo'),
    (0x0900, 0x097F, 'Devanagari'), (0xA8E0, 0xA8FF, 'Devanagari'), (0x0980, 0x09FF, 'Bengali'),
    (0x0A00, 0x0A7F, 'Gurmukhi'), (0x0A80, 0x0AFF, 'Gujarati'), (0x0B00, 0x0B7F, 'Oriya'),
    (0x0B80, 0x0BFF, 'Tamil'), (0x0C00, 0x0C7F, 'Telugu'), (0x0C80, 0x0CFF, 'Kannada'),
    (0x0D00, 0x0D7F, 'Malayalam'), (0x0D80, 0x0DFF, 'Sinhala'), (0x0E00, 0x0E7F, 'Thai'),
    (0x0E80, 0x0EFF, 'Lao'), (0x0F00, 0x0FFF, 'Tibetan'), (0x1000, 0x109F, 'Myanmar'),
    (0xA9E0, 0xA9FF, 'Myanmar'), (0xAA60, 0xAA7F, 'Myanmar'),
    (0x10A0, 0x10FF, 'Georgian'), (0x2D00, 0x2D2F, 'Georgian'), (0x1C90, 0x1CBF, 'Georgian'),
    (0x1100, 0x11FF, 'Hangul'), (0x3130, 0x318F, 'Hangul'), (0xAC00, 0xD7AF, 'Hangul'),
    (0xA960, 0xA97F, 'Hangul'), (0xD7B0, 0xD7FF, 'Hangul'),
    (0x1200, 0x139F, 'Ethiopic'), (0x2D80, 0x2DDF, 'Ethiopic'), (0xAB00, 0xAB2F, 'Ethiopic'),
    (0x13A0, 0x13FF, 'Cherokee'), (0x1400, 0x167F, 'Canadian syllabics'),
    (0x1680, 0x169F, 'Ogham'), (0x16A0, 0x16FF, 'Runic'), (0x1780, 0x17FF, 'Khmer'),
    (0x19E0, 0x19FF, 'Khmer'), (0x1800, 0x18AF, 'Mongolian'), (0x2D30, 0x2D7F, 'Tifinagh'),
    (0x3040, 0x309F, 'Hiragana'), (0x30A0, 0x30FF, 'Katakana'), (0x31F0, 0x31FF, 'Katakana'),
    (0xFF66, 0xFF9F, 'Katakana'), (0x3100, 0x312F, 'Bopomofo'),
    (0x2E80, 0x2FDF, 'Han'), (0x3400, 0x4DBF, 'Han'), (0x4E00, 0x9FFF, 'Han'),
    (0xF900, 0xFAFF, 'Han'), (0x20000, 0x3FFFF, 'Han'),
    (0x3000, 0x303F, 'CJK punctuation'), (0xFF00, 0xFF65, 'CJK punctuation'),
    (0xFFA0, 0xFFEF, 'CJK punctuation'),
    (0xA500, 0xA63F, 'Vai'), (0x1B00, 0x1B7F, 'Balinese'), (0xA980, 0xA9DF, 'Javanese'),
    (0x1A00, 0x1A1F, 'Buginese'), (0x1C50, 0x1C7F, 'Ol Chiki'),
]
BLOCKS.sort()
_STARTS = [b[0] for b in BLOCKS]

# Scripts kept out of the broad training set: the held-out set measures them as unseen.
HELDOUT_SCRIPTS = ('Armenian', 'Georgian', 'Khmer', 'Sinhala', 'Myanmar', 'Tibetan')


def script_of(ch):
    c = ord(ch)
    i = bisect.bisect_right(_STARTS, c) - 1
    if i >= 0 and BLOCKS[i][0] <= c <= BLOCKS[i][1]:
        return BLOCKS[i][2]
    cat = unicodedata.category(ch)
    if cat.startswith('S') or cat.startswith('P') or cat.startswith('Z'):
        return 'symbols/punctuation'
    if 0xE000 <= c <= 0xF8FF or c >= 0xF0000:
        return 'private use'
    if cat == 'Cf':
        return 'zero-width and format controls'
    return 'other (%s)' % unicodedata.name(ch, 'U+%04X' % c).split(' ')[0].title()


_HELDOUT_RE = None


def heldout_re():
    global _HELDOUT_RE
    if _HELDOUT_RE is None:
        ranges = ''.join('\\U%08x-\\U%08x' % (a, b) for a, b, s in BLOCKS if s in HELDOUT_SCRIPTS)
        _HELDOUT_RE = re.compile('[%s]' % ranges)
    return _HELDOUT_RE


def script_counts(text):
    """UTF-8 bytes per script (ASCII counted apart)."""
    counts = {}
    for ch in text:
        s = script_of(ch)
        counts[s] = counts.get(s, 0) + len(ch.encode('utf-8'))
    return counts


def hist(*paths):
    """Markdown table: per file, bytes per script (>= 0.1 % or a held-out script), sorted."""
    print('| file | bytes | scripts (UTF-8 bytes, share) |')
    print('|---|---|---|')
    for path in paths:
        b = open(path, 'rb').read()
        if path.endswith('.bin'):
            print('| %s | %d | binary |' % (os.path.basename(path), len(b)))
            continue
        counts = script_counts(b.decode('utf-8', errors='replace'))
        parts = []
        for s, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            if n * 1000 >= len(b) or s in HELDOUT_SCRIPTS:
                parts.append('%s %d (%.1f%%)' % (s, n, 100.0 * n / max(len(b), 1)))
        print('| %s | %d | %s |' % (os.path.basename(path), len(b), ', '.join(parts)))


def totals(*paths):
    """Markdown table: UTF-8 bytes per script over all the (text) files together."""
    counts = {}
    for path in paths:
        if path.endswith('.bin'):
            continue
        for k, n in script_counts(open(path, 'rb').read().decode('utf-8', errors='replace')).items():
            counts[k] = counts.get(k, 0) + n
    print('| script | UTF-8 bytes |')
    print('|---|---:|')
    for k, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print('| %s | %s |' % (k, format(n, ',')))


# --- readers ----------------------------------------------------------------------------------
def read_bytes(path):
    """File bytes; .gz (and dictzip .dz) and .xz are decompressed."""
    data = open(path, 'rb').read()
    if path.endswith(('.gz', '.dz')):
        data = gzip.decompress(data)
    elif path.endswith('.xz'):
        data = lzma.decompress(data)
    return data


def decode(data):
    """UTF-8 text, or None for bytes that are not UTF-8 (or hold NUL)."""
    try:
        t = data.decode('utf-8')
    except UnicodeDecodeError:
        return None
    if '\0' in t:
        return None
    if t.startswith('\ufeff'):
        t = t[1:]
    return t


def normalize(text):
    """LF line ends, no trailing white space, no runs of more than one empty line, no held-out
    script lines, no leading/trailing empty lines."""
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    lines = [l.rstrip() for l in text.split('\n')]
    rx = heldout_re()
    lines = [l for l in lines if not rx.search(l)]
    text = re.sub(r'\n{3,}', '\n\n', '\n'.join(lines)).strip('\n')
    return text + '\n' if text else ''


def cut(text, limit):
    """The longest prefix of whole lines with at most `limit` UTF-8 bytes (at least one line
    is never guaranteed: an over-long first line gives '')."""
    b = text.encode('utf-8')
    if len(b) <= limit:
        return text
    end = b.rfind(b'\n', 0, limit + 1)
    return b[:end + 1].decode('utf-8') if end >= 0 else ''


# --- HTML / XML to text -------------------------------------------------------------------------
BLOCK = set('address article aside blockquote body caption dd details div dl dt fieldset '
            'figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html li main nav ol p '
            'pre section summary table tbody td tfoot th thead tr ul '
            # Mallard (GNOME help) and DocBook elements that start a new line
            'page title subtitle desc item list steps terms tree note listing screen '
            'example table row para simpara formalpara refsect1 refsect2 sect1 sect2 sect3 '
            'chapter appendix entry'.split())
VOID = set('area base br col embed hr img input link meta param source track wbr'.split())
SKIP_TAGS = set('head script style noscript header aside footer nav template info '
                'svg math'.split())
SKIP_IDS = {'banner', 'SearchFrame', 'DonationFrame', 'DEBUG'}
SKIP_CLASSES = {'navheader', 'navfooter', 'toc', 'docnav', 'related', 'breadcrumbs'}


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
            if tag == self.skip[0] and tag not in VOID:
                self.skip[1] += 1
            return
        if tag not in VOID and self.skipped(tag, attrs):
            self.skip = [tag, 1]
            return
        if tag == 'br' or tag in BLOCK:
            self.parts.append('\n')
        if tag in ('pre', 'screen', 'code', 'listing', 'programlisting') and tag != 'code':
            self.pre += 1

    def handle_startendtag(self, tag, attrs):
        if not self.skip and (tag == 'br' or tag in BLOCK):
            self.parts.append('\n')

    def handle_endtag(self, tag):
        if self.skip:
            if tag == self.skip[0]:
                self.skip[1] -= 1
                if not self.skip[1]:
                    self.skip = None
            return
        if tag in ('pre', 'screen', 'listing', 'programlisting') and self.pre:
            self.pre -= 1
        if tag in BLOCK:
            self.parts.append('\n')

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r'[ \t\n\r\f]+', ' ', data))


def html_to_text(src):
    p = HtmlText()
    p.feed(src)
    p.close()
    t = '\n'.join(re.sub(r'^ {1,3}(?! )', '', l.rstrip()) for l in ''.join(p.parts).split('\n'))
    return re.sub(r'\n{3,}', '\n\n', t).strip('\n') + '\n'


def html_source(src):
    """Text of an HTML page whose body is one hyperlinked source listing (GHC's src pages)."""
    m = re.search(r'<pre[^>]*>(.*)</pre>', src, re.S)
    body = m.group(1) if m else src
    body = re.sub(r'<[^>]+>', '', body)
    return html.unescape(body)


# --- roff (man pages) -------------------------------------------------------------------------
_ROFF_ESC = [
    (re.compile(r'\\f(\[[^\]]*\]|\(..|.)'), ''), (re.compile(r'\\s[+-]?\d'), ''),
    (re.compile(r'\\\*\((..)'), ''), (re.compile(r'\\\*\[[^\]]*\]'), ''),
    (re.compile(r'\\\*.'), ''), (re.compile(r'\\[&|^%:]'), ''), (re.compile(r'\\c$'), ''),
    (re.compile(r'\\[kvhwlLoDxXzbNZ]\'[^\']*\''), ''), (re.compile(r'\\n(\(..|\[[^\]]*\]|.)'), ''),
]
_ROFF_CHARS = {'aq': "'", 'dq': '"', 'lq': '\u201c', 'rq': '\u201d', 'oq': '\u2018',
               'cq': '\u2019', 'em': '\u2014', 'en': '\u2013', 'hy': '-', 'bu': '\u2022',
               'co': '\u00a9', 'rg': '\u00ae', 'tm': '\u2122', 'de': '\u00b0', 'mu': '\u00d7',
               'ti': '~', 'ha': '^', 'rs': '\\', 'ga': '`', 'aa': '\u00b4', 'Fo': '\u00ab',
               'Fc': '\u00bb', 'fo': '\u2039', 'fc': '\u203a', 'ba': '|', 'or': '|',
               'pl': '+', 'mi': '\u2212', 'eq': '=', 'lh': '\u261c', 'rh': '\u261e',
               'Do': '$', 'at': '@', 'sh': '#', 'le': '\u2264', 'ge': '\u2265',
               'ne': '\u2260', 'ua': '\u2191', 'da': '\u2193', '->': '\u2192', '<-': '\u2190',
               'Eu': '\u20ac', 'ct': '\u00a2', 'Po': '\u00a3', 'Ye': '\u00a5', 'ss': '\u00df',
               'lB': '[', 'rB': ']', 'lC': '{', 'rC': '}', 'la': '\u27e8', 'ra': '\u27e9'}
_TEXT_MACROS = {'SH', 'SS', 'B', 'I', 'BR', 'BI', 'IB', 'IR', 'RB', 'RI', 'SM', 'SB', 'TP',
                'IP', 'Nm', 'Nd', 'Sh', 'Ss', 'Fl', 'Ar', 'Op', 'Pa', 'Xr', 'Em', 'Dq', 'Sq',
                'Ql', 'Cm', 'Dv', 'Ev', 'Er', 'Ic', 'Li', 'Va', 'Vt', 'Fn', 'Fa', 'Ft', 'It',
                'UR', 'MT', 'OP', 'SY', 'Tn', 'Sx', 'Nx', 'Bx', 'Ox', 'Fx', 'Lk', 'Mt'}


def roff_escape(s):
    def special(m):
        name = m.group(1) or m.group(2)
        return _ROFF_CHARS.get(name, '')
    s = re.sub(r'\\\((..)|\\\[([^\]]*)\]', special, s)
    for rx, rep in _ROFF_ESC:
        s = rx.sub(rep, s)
    s = s.replace('\\-', '-').replace('\\ ', ' ').replace('\\~', ' ').replace('\\e', '\\')
    s = s.replace("\\'", '\u00b4').replace('\\`', '`').replace('\\0', ' ')
    return s.replace('\\\\', '\\').replace('\\', '')


def deroff(src):
    """Readable text of a man page (man/mdoc macros): requests dropped, the text arguments of
    font and heading macros kept, escapes resolved; tables (tbl) kept as their data lines."""
    out = []
    for line in src.split('\n'):
        if line.startswith(('.\\"', "'\\\"", '\\"')) or line in ('.', "'"):
            continue
        if line.startswith(('.', "'")):
            m = re.match(r"^[.'][ \t]*([A-Za-z]{1,3}|\S+)[ \t]*(.*)$", line)
            if not m:
                continue
            name, args = m.group(1), m.group(2)
            if name in ('SH', 'SS', 'Sh', 'Ss'):
                out.append('')
            if name in ('PP', 'P', 'LP', 'Pp', 'sp', 'br'):
                out.append('')
                continue
            if name not in _TEXT_MACROS:
                continue
            args = re.sub(r'"([^"]*)"', lambda q: q.group(1), args)
            if name in ('BR', 'BI', 'IB', 'IR', 'RB', 'RI'):
                args = args.replace(' ', '')
                args = re.sub(r'(?<=[^\s\\])\\ ', ' ', args)
            line = args
        line = roff_escape(line)
        if line.strip() or (out and out[-1] != ''):
            out.append(line)
    return '\n'.join(out)


# --- gettext .mo -----------------------------------------------------------------------------
def mo_strings(data):
    """The translated strings (msgstr) of a .mo file, plural forms one per line; the header
    entry (msgid "") and empty translations are left out."""
    if len(data) < 28:
        return []
    magic = struct.unpack_from('<I', data)[0]
    end = '<' if magic == 0x950412de else '>' if magic == 0xde120495 else None
    if end is None:
        return []
    _, n, orig, trans = struct.unpack_from(end + '4I', data, 4)
    charset = 'utf-8'
    out = []
    for i in range(n):
        olen, ooff = struct.unpack_from(end + '2I', data, orig + 8 * i)
        tlen, toff = struct.unpack_from(end + '2I', data, trans + 8 * i)
        msgid = data[ooff:ooff + olen]
        msgstr = data[toff:toff + tlen]
        if not msgid:
            m = re.search(rb'charset=([-\w]+)', msgstr)
            if m:
                charset = m.group(1).decode('ascii').lower()
            continue
        for form in msgstr.split(b'\0'):
            if not form:
                continue
            try:
                s = form.decode(charset)
            except (UnicodeDecodeError, LookupError):
                continue
            out.append(s)
    return out


# --- capped selection ---------------------------------------------------------------------------
def hash_order(key):
    return hashlib.sha256(key.encode('utf-8')).digest()


def select(docs, cap):
    """docs: list of (key, text). Takes documents in SHA-256-of-key order while they fit in
    `cap` UTF-8 bytes (a document that does not fit is skipped, smaller ones may still
    follow), and returns them in key order."""
    taken, total = [], 0
    for key, text in sorted(docs, key=lambda d: hash_order(d[0])):
        n = len(text.encode('utf-8')) + 1
        if total + n <= cap:
            taken.append((key, text))
            total += n
    return sorted(taken)


def water_fill(avail, cap):
    """Per-source budgets for sources with `avail` bytes each so that they sum to at most
    `cap`: every source gets an equal share, and what a small source leaves goes to the rest."""
    budget = {}
    left, names = cap, sorted(avail, key=lambda k: (avail[k], k))
    for i, k in enumerate(names):
        share = left // (len(names) - i)
        budget[k] = min(avail[k], share)
        left -= budget[k]
    return budget


def prng(seed, n):
    """n bytes: SHA-256(seed || 8-byte big-endian counter) blocks."""
    out = bytearray()
    i = 0
    seed = seed.encode('utf-8')
    while len(out) < n:
        out += hashlib.sha256(seed + struct.pack('>Q', i)).digest()
        i += 1
    return bytes(out[:n])


def random(seed, n):
    sys.stdout.buffer.write(prng(seed, int(n)))


if __name__ == '__main__':
    globals()[sys.argv[1]](*sys.argv[2:])
