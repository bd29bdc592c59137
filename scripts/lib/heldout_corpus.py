"""The independent evaluation set (scripts/rebuild-heldout.sh): recipe and builder.

    python3 heldout_corpus.py packages             the Debian packages read, one a line
    python3 heldout_corpus.py build X_DIR OUT_DIR  one file per source into OUT_DIR
    python3 heldout_corpus.py slices OUT_DIR DEST  the first <= 16 KB (at a line end) of each
                                                   file of OUT_DIR into DEST (random.bin: 16 KiB)

Every source is a package SPEC section 7 reserves for evaluation (or, for the scripts the
training set leaves out, a Firefox language pack, also reserved). Documents are picked in
SHA-256-of-path order until the file's cap, each cut at a line end, and written in path order
separated by one empty line (code and pod files after a `==> path <==` line).
"""
import os, re, sys, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_tool as ct  # noqa: E402
from broad_corpus import Tree, archive_members, with_headers, write_docs  # noqa: E402

KB = 1000
CAP = 400 * KB          # one held-out file
DOC_CAP = 40 * KB       # one document inside it
SLICE = 16 * 1024       # datasets/heldout/ slices
RANDOM_BYTES = 256 * 1024
RANDOM_SEED = 'bltpatch held-out random'

HANDBOOK = 'usr/share/doc/debian-handbook/html/%s/*.html'
LO_HELP = 'usr/share/libreoffice/help/%s/text/*.html'
FIREFOX = 'usr/lib/firefox-esr/browser/extensions/langpack-%s@firefox-esr.mozilla.org.xpi'

# (file, kind, package, glob, scripts). Kinds: html (page text), text, code, ui (Firefox
# language pack values), dict (the GCIDE dictd text in evenly spaced slices). With scripts, a
# document is kept only when at least 20 % of its bytes are in them (pages left untranslated,
# in English, are dropped). Globs: fnmatch, '*' crosses '/', '|' separates alternatives.
PY_DOC = 'usr/share/doc/python3.11/html/'
SOURCES = [
    ('ar_docs.txt', 'html', 'debian-handbook', HANDBOOK % 'ar-MA', ('Arabic',)),
    ('fa_docs.txt', 'html', 'debian-handbook', HANDBOOK % 'fa-IR', ('Arabic',)),
    ('ja_docs.txt', 'html', 'debian-handbook', HANDBOOK % 'ja-JP', ('Hiragana', 'Katakana', 'Han')),
    ('hi_docs.txt', 'html', 'libreoffice-help-hi', LO_HELP % 'hi', ('Devanagari',)),
    ('km_docs.txt', 'html', 'libreoffice-help-km', LO_HELP % 'km', ('Khmer',)),
    ('dz_docs.txt', 'html', 'libreoffice-help-dz', LO_HELP % 'dz', ('Tibetan',)),
    ('hy_ui.txt', 'ui', 'firefox-esr-l10n-hy-am', FIREFOX % 'hy-AM', ('Armenian',)),
    ('ka_ui.txt', 'ui', 'firefox-esr-l10n-ka', FIREFOX % 'ka', ('Georgian',)),
    ('si_ui.txt', 'ui', 'firefox-esr-l10n-si', FIREFOX % 'si', ('Sinhala',)),
    ('my_ui.txt', 'ui', 'firefox-esr-l10n-my', FIREFOX % 'my', ('Myanmar',)),
    ('en_python_docs.txt', 'html', 'python3.11-doc',
     PY_DOC + 'tutorial/*.html|' + PY_DOC + 'howto/*.html|' + PY_DOC + 'faq/*.html', ()),
    ('rst_docs.txt', 'text', 'python3.11-doc',
     PY_DOC + '_sources/library/*.rst.txt|' + PY_DOC + '_sources/reference/*.rst.txt', ()),
    ('python_src.py.txt', 'code', 'libpython3.11-stdlib', 'usr/lib/python3.11/*.py', ()),
    ('c_src.txt', 'code', 'glibc-source', 'tar:usr/src/glibc/glibc-*.tar.xz:*.c', ()),
    ('perl_pod.txt', 'code', 'perl-doc', 'usr/share/perl/*/pod/*.pod', ()),
    ('en_gcide.txt', 'dict', 'dict-gcide', 'usr/share/dictd/gcide.dict.dz', ()),
    ('de_quotes.txt', 'text', 'fortunes-de', 'usr/share/games/fortunes/de/*', ()),
    ('ru_quotes.txt', 'text', 'fortunes-ru', 'usr/share/games/fortunes/ru/*', ()),
    # three files (chinese, song100, tang300): 133 KB each at most
    ('zh_quotes.txt', 'text', 'fortunes-zh', 'usr/share/games/fortunes/*', ()),
]


def packages():
    out = []
    for _, _, pkg, _, _ in SOURCES:
        if pkg not in out:
            out.append(pkg)
    return out


def text(data, limit=DOC_CAP):
    t = ct.decode(data)
    if t is None:
        return None
    t = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', t)          # terminal colours (fortunes-zh)
    t = t.replace('\r\n', '\n').replace('\r', '\n')
    t = re.sub(r'\n{3,}', '\n\n', '\n'.join(l.rstrip() for l in t.split('\n'))).strip('\n')
    return ct.cut(t + '\n', limit) or None


def ftl_values(src):
    """The translated text of a Fluent (.ftl) or .properties file: each message value and
    attribute value on its own line (continuation lines joined), comments and keys dropped."""
    out = []
    for line in src.split('\n'):
        s = line.strip()
        if not s or s.startswith(('#', '!', '[')):
            continue
        if line[:1] in ' \t' and out and not s.startswith('.') and '=' not in s.split(' ')[0]:
            out[-1] += ' ' + s if out[-1] else s      # continuation of a multiline value
            continue
        m = re.match(r'^\.?[-\w.]+\s*[=:]\s*(.*)$', s)
        if m:
            out.append(m.group(1).strip())
    return '\n'.join(v for v in out if v)


def docs_for(tree, kind, pkg, pattern):
    docs = []
    if pattern.startswith('tar:'):
        _, arch, member = pattern.split(':', 2)
        for p, rel in tree.glob(pkg, arch):
            for name, data in archive_members(tree.path(p, rel), 'tar', member):
                t = text(data)
                if t:
                    docs.append((name, t))
        return docs
    for p, rel in tree.glob(pkg, pattern):
        path = tree.path(p, rel)
        if kind == 'ui':
            with zipfile.ZipFile(path) as z:
                for name in sorted(z.namelist()):
                    if name.endswith(('.ftl', '.properties')):
                        t = ct.decode(z.read(name))
                        t = text(ftl_values(t).encode()) if t else None
                        if t:
                            docs.append((name, t))
            continue
        if kind == 'dict':
            docs += dict_slices(ct.read_bytes(path).decode('utf-8', errors='replace'))
            continue
        if rel.endswith(('.dat', '.u8')) or '/off/' in rel or os.path.islink(path):
            continue
        data = ct.read_bytes(path)
        limit = CAP // 3 if pkg == 'fortunes-zh' else DOC_CAP
        if kind == 'html':
            t = ct.decode(data)
            data = ct.html_to_text(t).encode() if t else b''
        t = text(data, limit)
        if t:
            docs.append((rel, t))
    return docs


def dict_slices(t, n=16):
    """n slices of the dictionary text from evenly spaced offsets, each starting at a line
    start and DOC_CAP long at most (headword order: A to Z)."""
    out, step = [], len(t) // n
    for i in range(n):
        start = t.find('\n', i * step) + 1 if i else 0
        out.append(('gcide.dict@%08d' % start, ct.cut(t[start:start + 2 * DOC_CAP], CAP // n)))
    return out


def script_share(text, scripts):
    counts = ct.script_counts(text)
    return sum(counts.get(s, 0) for s in scripts) / max(sum(counts.values()), 1)


def build(x_dir, out_dir):
    tree = Tree(x_dir, packages())
    for name, kind, pkg, pattern, scripts in SOURCES:
        docs = docs_for(tree, kind, pkg, pattern)
        if scripts:
            docs = [d for d in docs if script_share(d[1], scripts) >= 0.2]
        if kind == 'code':
            docs = with_headers(docs)
        if not docs:
            sys.exit('heldout: no documents for %s from %s (%s)' % (name, pkg, pattern))
        chosen = ct.select(docs, CAP)
        write_docs(os.path.join(out_dir, name), chosen)
        print('%-20s %-24s %5d of %5d documents' % (name, pkg, len(chosen), len(docs)))
    with open(os.path.join(out_dir, 'random.bin'), 'wb') as f:
        f.write(ct.prng(RANDOM_SEED, RANDOM_BYTES))


def slices(out_dir, dest):
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(out_dir)):
        src = os.path.join(out_dir, name)
        if not (name.endswith('.txt') or name.endswith('.bin')):
            continue
        b = open(src, 'rb').read()
        if name.endswith('.bin'):
            part = b[:SLICE]
        else:
            end = b.rfind(b'\n', 0, SLICE + 1)
            part = b[:end + 1]
        with open(os.path.join(dest, name), 'wb') as f:
            f.write(part)


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'packages':
        print('\n'.join(packages()))
    elif cmd == 'build':
        build(sys.argv[2], sys.argv[3])
    elif cmd == 'slices':
        slices(sys.argv[2], sys.argv[3])
    else:
        sys.exit('usage: heldout_corpus.py packages | build X_DIR OUT_DIR | slices OUT_DIR DEST')
