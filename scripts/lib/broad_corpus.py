"""The broad training corpus (scripts/rebuild-broad-corpus.sh): recipe and builder.

    python3 broad_corpus.py packages            the Debian packages the recipe reads, one a line
    python3 broad_corpus.py build X_DIR OUT_DIR builds OUT_DIR from the packages unpacked in
                                                X_DIR/<package>/ and prints a summary

Everything is deterministic (see corpus_tool). Text files are UTF-8 with LF line ends;
documents are separated by one empty line; in code_*, markup_* and data_* files each document
starts with a line `==> package/path <==`.
"""
import fnmatch, io, os, re, sys, tarfile, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_tool as ct  # noqa: E402

KB, MB = 1000, 1000 * 1000

# --- natural languages ------------------------------------------------------------------------
# code: (English name, script). Only these languages are taken; locale directories map to a
# code by their part before '_' (zh_TW and zh_HK: zh_TW, other zh: zh_CN; no is nb), and
# '@' variants (sr@latin, ca@valencia, ...) are skipped. Languages written in a script that
# the held-out set keeps unseen (corpus_tool.HELDOUT_SCRIPTS) are deliberately absent.
LANGS = {
    'en': ('English', 'Latin'), 'de': ('German', 'Latin'), 'fr': ('French', 'Latin'),
    'es': ('Spanish', 'Latin'), 'it': ('Italian', 'Latin'), 'pt': ('Portuguese', 'Latin'),
    'nl': ('Dutch', 'Latin'), 'pl': ('Polish', 'Latin'), 'cs': ('Czech', 'Latin'),
    'sk': ('Slovak', 'Latin'), 'sl': ('Slovenian', 'Latin'), 'hr': ('Croatian', 'Latin'),
    'ro': ('Romanian', 'Latin'), 'hu': ('Hungarian', 'Latin'), 'fi': ('Finnish', 'Latin'),
    'et': ('Estonian', 'Latin'), 'lv': ('Latvian', 'Latin'), 'lt': ('Lithuanian', 'Latin'),
    'sv': ('Swedish', 'Latin'), 'da': ('Danish', 'Latin'), 'nb': ('Norwegian Bokmal', 'Latin'),
    'nn': ('Norwegian Nynorsk', 'Latin'), 'is': ('Icelandic', 'Latin'), 'tr': ('Turkish', 'Latin'),
    'az': ('Azerbaijani', 'Latin'), 'id': ('Indonesian', 'Latin'), 'ms': ('Malay', 'Latin'),
    'vi': ('Vietnamese', 'Latin'), 'ca': ('Catalan', 'Latin'), 'eu': ('Basque', 'Latin'),
    'gl': ('Galician', 'Latin'), 'eo': ('Esperanto', 'Latin'), 'ga': ('Irish', 'Latin'),
    'cy': ('Welsh', 'Latin'), 'af': ('Afrikaans', 'Latin'), 'sw': ('Swahili', 'Latin'),
    'sq': ('Albanian', 'Latin'), 'oc': ('Occitan', 'Latin'), 'br': ('Breton', 'Latin'),
    'ru': ('Russian', 'Cyrillic'), 'uk': ('Ukrainian', 'Cyrillic'),
    'be': ('Belarusian', 'Cyrillic'), 'bg': ('Bulgarian', 'Cyrillic'),
    'sr': ('Serbian', 'Cyrillic'), 'mk': ('Macedonian', 'Cyrillic'),
    'kk': ('Kazakh', 'Cyrillic'), 'mn': ('Mongolian', 'Cyrillic'),
    'el': ('Greek', 'Greek'),
    'ar': ('Arabic', 'Arabic'), 'fa': ('Persian', 'Arabic'), 'ur': ('Urdu', 'Arabic'),
    'ug': ('Uyghur', 'Arabic'),
    'he': ('Hebrew', 'Hebrew'),
    'hi': ('Hindi', 'Devanagari'), 'mr': ('Marathi', 'Devanagari'), 'ne': ('Nepali', 'Devanagari'),
    'bn': ('Bengali', 'Bengali'), 'as': ('Assamese', 'Bengali'), 'pa': ('Punjabi', 'Gurmukhi'),
    'gu': ('Gujarati', 'Gujarati'), 'or': ('Odia', 'Oriya'), 'ta': ('Tamil', 'Tamil'),
    'te': ('Telugu', 'Telugu'), 'kn': ('Kannada', 'Kannada'), 'ml': ('Malayalam', 'Malayalam'),
    'th': ('Thai', 'Thai'), 'lo': ('Lao', 'Lao'),
    'zh_CN': ('Chinese (simplified)', 'Han'), 'zh_TW': ('Chinese (traditional)', 'Han'),
    'ja': ('Japanese', 'Han + kana'), 'ko': ('Korean', 'Hangul'),
    'am': ('Amharic', 'Ethiopic'),
}
LANG_CAP = 3 * MB          # one lang_<code>.txt file
DOC_CAP = 150 * KB         # one document (a man page, an HTML page, ...), cut at a line end


def lang_of_locale(name):
    """Language code of a locale directory name (de, pt_BR, zh_TW, sr@latin, C...), or None."""
    if '@' in name:
        return None
    if name in ('C', 'en_US', 'en'):
        return 'en'
    base = name.split('_')[0].split('.')[0]
    if base == 'zh':
        return 'zh_TW' if name.startswith(('zh_TW', 'zh_HK', 'zh-TW', 'zh-tw')) else 'zh_CN'
    if base == 'no':
        base = 'nb'
    base = base.split('-')[0]
    return base if base in LANGS else None


MANPAGES = ('cs da de el es fi fr hu id it ja mk nb nl pl pt-br ro ru sr sv tr uk vi zh').split()
DEBIAN_REFERENCE = {'de': 'de', 'en': 'en', 'es': 'es', 'fr': 'fr', 'id': 'id', 'it': 'it',
                    'ja': 'ja', 'pt': 'pt', 'zh-cn': 'zh_CN', 'zh-tw': 'zh_TW'}
MAINT_GUIDE = {'': 'en', 'ca': 'ca', 'de': 'de', 'es': 'es', 'fr': 'fr', 'it': 'it', 'ja': 'ja',
               'ru': 'ru', 'vi': 'vi', 'zh-cn': 'zh_CN', 'zh-tw': 'zh_TW'}
DEVELOPERS_REFERENCE = {'': 'en', 'de': 'de', 'fr': 'fr', 'it': 'it', 'ja': 'ja', 'ru': 'ru'}
DEBIAN_FAQ = {'': 'en', 'de': 'de', 'fr': 'fr', 'it': 'it', 'ja': 'ja', 'ko': 'ko', 'nl': 'nl',
              'pt': 'pt', 'ru': 'ru', 'zh-cn': 'zh_CN'}
MO_PACKAGES = ('iso-codes coreutils apt dpkg bash tar util-linux-locales e2fsprogs gettext '
               'debconf-i18n aptitude-common libgtk-3-common libglib2.0-data '
               'gnome-control-center-data nautilus-data evince-common gedit-common '
               'gnome-shell-common evolution-data-server-common gnome-software-common '
               'gnome-system-monitor gnome-calculator gnome-terminal-data xfce4-panel thunar-data '
               'xfce4-settings mousepad vlc-l10n transmission-common libgweather-4-common').split()
# hunspell/myspell word lists, for languages whose prose is scarce in Debian
WORDLISTS = {'hunspell-ar': 'ar', 'hunspell-bn': 'bn', 'hunspell-gu': 'gu', 'hunspell-hi': 'hi',
             'hunspell-ml': 'ml', 'hunspell-ne': 'ne', 'hunspell-te': 'te', 'hunspell-th': 'th',
             'hunspell-lo': 'lo', 'hunspell-he': 'he', 'hunspell-ko': 'ko', 'hunspell-kk': 'kk',
             'hunspell-mn': 'mn', 'hunspell-sw': 'sw', 'hunspell-el': 'el', 'myspell-fa': 'fa'}
FORTUNES = {'fortunes-es': 'es', 'fortunes-it': 'it', 'fortunes-pl': 'pl', 'fortunes-bg': 'bg',
            'fortunes-cs': 'cs'}
# per-source caps inside one language file (then all sources together are water-filled to
# LANG_CAP)
SOURCE_CAP = {'man': 1200 * KB, 'debian-reference': 1000 * KB, 'debian-guides': 800 * KB,
              'installation-guide': 800 * KB, 'gnome-help': 800 * KB, 'messages': 1000 * KB,
              'words': 300 * KB, 'fortunes': 500 * KB}

# --- code, markup, data -----------------------------------------------------------------------
# (output, [(package, path glob under the package root)...], cap). Globs use fnmatch ('*'
# crosses '/', '|' separates alternatives). *.gz files are decompressed; 'zip:ARCHIVE:MEMBER' and
# 'tar:ARCHIVE:MEMBER' read members of an archive ('tar:ARCHIVE:INNER:MEMBER': of a tar inside).
CODE = [
    ('code_go', [('golang-1.19-src', 'usr/share/go-1.19/src/*.go')], 3 * MB),
    ('code_java', [('openjdk-17-source', 'zip:usr/lib/jvm/openjdk-17/lib/src.zip:*.java')], 3 * MB),
    # lodash-es repeats lodash; typescript/lib/*.js are builds of one compiler: one is taken
    ('code_javascript', [('node-lodash', 'usr/share/nodejs/lodash/*.js'),
                         ('node-babel7', 'usr/share/nodejs/*.js'),
                         ('node-acorn', 'usr/share/nodejs/*.js'),
                         ('node-typescript', 'usr/share/nodejs/typescript/lib/typescript.js')],
     3 * MB),
    ('code_typescript', [('node-typescript', 'usr/share/nodejs/typescript/lib/*.d.ts'),
                         ('node-babel7', 'usr/share/nodejs/*.ts'),
                         ('node-lodash', 'usr/share/nodejs/@types/*.ts')], 2 * MB),
    # POSIX sh and bash, plus zsh and fish functions
    ('code_shell', [('bash-completion', 'usr/share/bash-completion/completions/*'),
                    ('debootstrap', 'usr/share/debootstrap/*'),
                    ('debootstrap', 'usr/sbin/debootstrap'),
                    ('live-build', 'usr/lib/live/build/*|usr/share/live/build/functions/*'),
                    ('initramfs-tools-core', 'usr/share/initramfs-tools/*'),
                    ('zsh-common', 'usr/share/zsh/functions/*'),
                    ('fish-common', 'usr/share/fish/*.fish')], 3 * MB),
    ('code_ruby', [('libruby3.1', 'usr/lib/ruby/3.1.0/*.rb')], 3 * MB),
    ('code_haskell', [('ghc-doc', 'html:usr/share/doc/ghc-doc/html/libraries/*/src/*.html')], 3 * MB),
    ('code_ocaml', [('ocaml-source', 'tar:usr/src/ocaml-source-*.tar:*.orig.tar.*:*.ml'),
                    ('ocaml-source', 'tar:usr/src/ocaml-source-*.tar:*.orig.tar.*:*.mli')], 3 * MB),
    ('code_lua', [('awesome', 'usr/share/awesome/*.lua'), ('lua-penlight', 'usr/share/lua/*.lua'),
                  ('neovim-runtime', 'usr/share/nvim/runtime/*.lua')], 2500 * KB),
    ('code_tcl', [('libtcl8.6', 'usr/share/tcltk/*.tcl'), ('tcllib', 'usr/share/tcltk/*.tcl')],
     2500 * KB),
    ('code_elisp', [('emacs-el', 'usr/share/emacs/*.el.gz')], 3 * MB),
    ('code_scheme', [('guile-3.0-libs', 'usr/share/guile/*.scm')], 2500 * KB),
    ('code_erlang', [('erlang-src', 'usr/lib/erlang/lib/*.erl'),
                     ('erlang-src', 'usr/lib/erlang/lib/*.hrl')], 2500 * KB),
    ('code_php', [('php-phpseclib3', 'usr/share/php/*.php'), ('php-twig', 'usr/share/php/*.php'),
                  ('php-league-commonmark', 'usr/share/php/*.php'),
                  ('libphp-phpmailer', 'usr/share/php/*.php')], 2500 * KB),
    ('code_common_lisp', [('sbcl-source', 'usr/share/sbcl-source/*.lisp')], 2500 * KB),
    ('code_prolog', [('swi-prolog-core', 'usr/lib/swi-prolog/library/*.pl')], 2 * MB),
    ('code_vimscript', [('vim-runtime', 'usr/share/vim/*.vim')], 2 * MB),
    ('code_octave', [('octave-common', 'usr/share/octave/*.m')], 2 * MB),
    ('code_cmake', [('cmake-data', 'usr/share/cmake-*.cmake')], 1500 * KB),
]
# Never taken from any package: files of the held-out programming languages (C, C++, Python)
# and of Perl (its pod is in the held-out set); .pl is Prolog in swi-prolog-core only.
NOT_CODE = re.compile(r'\.(c|h|cc|cpp|cxx|hpp|hh|hxx|py|pyi|pyx|pl|pm|pod|3pm|3perl)(\.gz)?$')

MARKUP = [
    ('markup_html', [('tcl8.6-doc', 'usr/share/doc/tcl8.6-doc/*.htm*'),
                     ('sphinx-doc', 'usr/share/doc/sphinx-doc/html/*.html'),
                     ('installation-guide-amd64', 'usr/share/doc/installation-guide-amd64/en/*.html'),
                     ('docutils-doc', 'usr/share/doc/docutils-doc/*.html'),
                     ('debian-reference-en', 'usr/share/debian-reference/*.en.html')], 3 * MB),
    ('markup_markdown', [('*', '*.md'), ('*', '*.md.gz'), ('*', '*.markdown')], 2500 * KB),
    ('markup_rst', [('docutils-doc', 'usr/share/doc/docutils-doc/*.txt*'),
                    ('*', '*.rst'), ('*', '*.rst.gz')], 2500 * KB),
    ('markup_latex', [('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.sty'),
                      ('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.cls'),
                      ('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.ltx'),
                      ('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.tex'),
                      ('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.def'),
                      ('texlive-latex-base', 'usr/share/texlive/texmf-dist/tex/*.fd')], 2500 * KB),
    ('markup_xml', [('docbook-xsl', 'usr/share/xml/docbook/*.xsl'),
                    ('adwaita-icon-theme', 'usr/share/icons/*.svg'),
                    ('gnome-user-docs', 'usr/share/help/C/*.page'),
                    ('gnome-user-docs', 'usr/share/help/C/*.svg'),
                    ('*', 'usr/share/metainfo/*.xml'), ('*', 'usr/share/glib-2.0/schemas/*.xml'),
                    ('*', 'usr/share/gtksourceview-*.lang')], 3 * MB),
    ('markup_roff', [('*', 'usr/share/man/man*.gz')], 1500 * KB),
]
DATA = [
    ('data_json', [('ansible', '*.json'), ('node-mdn-data', '*.json'), ('*', 'usr/share/nodejs/*.json'),
                   ('node-typescript', '*.json')], 3 * MB),
    ('data_yaml', [('ansible', '*.yml'), ('ansible', '*.yaml'), ('*', '*.yml'), ('*', '*.yaml')],
     3 * MB),
    ('data_csv', [('python3-statsmodels', '*.csv'), ('python3-sklearn', '*.csv'),
                  ('python3-sklearn', '*.csv.gz'), ('distro-info-data', '*.csv'),
                  ('*', '*.csv'), ('*', '*.tsv')], 2 * MB),
    ('data_toml', [('*', '*.toml'), ('*', '*/Cargo.toml')], 1 * MB),
    ('data_ini', [('systemd', 'lib/systemd/*.service'), ('systemd', 'lib/systemd/*.socket'),
                  ('systemd', 'lib/systemd/*.target'), ('systemd', 'lib/systemd/*.timer'),
                  ('systemd', 'usr/lib/*.conf'), ('systemd', 'etc/*.conf'),
                  ('php8.2-common', 'usr/lib/php/*/php.ini-*'), ('*', '*.desktop'),
                  ('* -texlive-latex-base', '*.ini'), ('*', 'etc/*.conf')], 1500 * KB),  # TeX's .ini are TeX
    ('data_logs', [('*', 'usr/share/doc/*/changelog.Debian.gz'),
                   ('*', 'usr/share/doc/*/NEWS.Debian.gz'), ('*', '*.log')], 2500 * KB),
    ('data_tables', [('nmap-common', 'usr/share/nmap/nmap-services'),
                     ('nmap-common', 'usr/share/nmap/nmap-os-db'),
                     ('nmap-common', 'usr/share/nmap/nmap-mac-prefixes'),
                     ('nmap-common', 'usr/share/nmap/nmap-protocols'),
                     ('xkb-data', 'usr/share/X11/xkb/symbols/*'),
                     ('hwdata', '*.ids'), ('distro-info-data', '*')], 2 * MB),
]
# for data_toml: their Cargo.toml (and README.md for markup_markdown); no Rust is taken
EXTRA_PACKAGES = ['librust-%s-dev' % c for c in (
    'anyhow bytes cargo chrono clap futures hyper itertools libc log nix rand regex serde '
    'serde-json syn tokio toml toml-edit url').split()]

BINARY_TAKEN = 2 * MB      # compressed files (gzip, xz, PNG) from the packages, 64 KB each at most
BINARY_RANDOM = 2 * MB     # SHA-256 counter-mode bytes, seed 'bltpatch broad corpus'


def packages():
    pk = ['manpages-' + l for l in MANPAGES]
    pk += ['debian-reference-' + l for l in DEBIAN_REFERENCE]
    pk += [('maint-guide-' + l).rstrip('-') for l in MAINT_GUIDE]
    pk += [('developers-reference-' + l).rstrip('-') for l in DEVELOPERS_REFERENCE]
    pk += [('debian-faq-' + l).rstrip('-') for l in DEBIAN_FAQ]
    pk += ['installation-guide-amd64', 'gnome-user-docs']
    pk += MO_PACKAGES + list(WORDLISTS) + list(FORTUNES)
    for _, sources, _ in CODE + MARKUP + DATA:
        pk += [p for p, _ in sources if not p.startswith('*')]
    pk += EXTRA_PACKAGES
    seen, out = set(), []
    for p in pk:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


# --- walking the unpacked packages -----------------------------------------------------------
def walk(root):
    """Relative paths of the regular files under root, sorted (C order)."""
    out = []
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, root))
    out = [p for p in out if p != '.extracted']
    return sorted(out, key=lambda s: s.encode('utf-8', 'surrogateescape'))


class Tree:
    def __init__(self, x_dir, pkgs):
        self.x = x_dir
        self.pkgs = pkgs
        self.files = {p: walk(os.path.join(x_dir, p)) for p in pkgs}

    def path(self, pkg, rel):
        return os.path.join(self.x, pkg, rel)

    def glob(self, pkg, pattern):
        """(pkg, rel) for files of pkg ('*': every package; '* -a -b': all but a and b) whose
        path matches pattern (alternatives separated by '|')."""
        alternatives = pattern.split('|')
        if pkg.startswith('*'):     # '*', or '* -pkg -pkg': every package but those
            skip = {w[1:] for w in pkg.split()[1:]}
            pkgs = [p for p in self.pkgs if p not in skip]
        else:
            pkgs = [pkg]
        for p in pkgs:
            for rel in self.files[p]:
                if any(fnmatch.fnmatchcase(rel, a) for a in alternatives):
                    yield p, rel


def text_of(data, limit=DOC_CAP):
    t = ct.decode(data)
    if t is None:
        return None
    return ct.cut(ct.normalize(t), limit) or None


def looks_generated(text):
    """Minified or machine-written: very long lines."""
    lines = text.split('\n')
    return max(len(l) for l in lines) > 2000 or len(text) / max(len(lines), 1) > 300


# --- sources ----------------------------------------------------------------------------------
def lang_sources(tree):
    """{lang: {source label: [(key, text)]}}"""
    out = {}

    def add(lang, source, key, text):
        if lang and text:
            out.setdefault(lang, {}).setdefault(source, []).append((key, text))

    for l in MANPAGES:
        pkg = 'manpages-' + l
        for p, rel in tree.glob(pkg, 'usr/share/man/*'):
            parts = rel.split('/')
            if len(parts) < 5 or not parts[4].startswith('man'):
                continue
            data = ct.read_bytes(tree.path(p, rel))
            t = ct.decode(data)
            if t is None or t.startswith('.so '):
                continue
            add(lang_of_locale(parts[3]), 'man', p + '/' + rel, text_of(ct.deroff(t).encode()))
    for suffix, lang in DEBIAN_REFERENCE.items():
        pkg = 'debian-reference-' + suffix
        for p, rel in tree.glob(pkg, 'usr/share/debian-reference/*.html'):
            add(lang, 'debian-reference', p + '/' + rel, html_text(tree.path(p, rel)))
    for base, table in (('maint-guide', MAINT_GUIDE), ('developers-reference', DEVELOPERS_REFERENCE),
                        ('debian-faq', DEBIAN_FAQ)):
        for suffix, lang in table.items():
            pkg = (base + '-' + suffix).rstrip('-')
            for p, rel in tree.glob(pkg, 'usr/share/doc/*.html|usr/share/developers-reference/*.html'):
                add(lang, 'debian-guides', p + '/' + rel, html_text(tree.path(p, rel)))
    for p, rel in tree.glob('installation-guide-amd64', 'usr/share/doc/installation-guide-amd64/*.html'):
        add(lang_of_locale(rel.split('/')[4]), 'installation-guide', p + '/' + rel,
            html_text(tree.path(p, rel)))
    for p, rel in tree.glob('gnome-user-docs', 'usr/share/help/*.page'):
        add(lang_of_locale(rel.split('/')[3]), 'gnome-help', p + '/' + rel,
            html_text(tree.path(p, rel)))
    for pkg in MO_PACKAGES:
        for p, rel in tree.glob(pkg, 'usr/share/locale/*/LC_MESSAGES/*.mo'):
            strings = ct.mo_strings(open(tree.path(p, rel), 'rb').read())
            add(lang_of_locale(rel.split('/')[3]), 'messages', p + '/' + rel,
                text_of('\n'.join(strings).encode('utf-8'), 10**9))
    for pkg, lang in WORDLISTS.items():
        for p, rel in tree.glob(pkg, 'usr/share/hunspell/*.dic'):
            add(lang, 'words', p + '/' + rel, words(tree.path(p, rel)))
    for pkg, lang in FORTUNES.items():
        for p, rel in tree.glob(pkg, 'usr/share/games/fortunes/*'):
            if rel.endswith(('.dat', '.u8')) or os.path.islink(tree.path(p, rel)):
                continue
            add(lang, 'fortunes', p + '/' + rel, text_of(open(tree.path(p, rel), 'rb').read()))
    return out


def html_text(path):
    t = ct.decode(ct.read_bytes(path))
    return text_of(ct.html_to_text(t).encode('utf-8')) if t is not None else None


def words(path):
    """A hunspell .dic as one word a line (the count line, affix flags and morphology dropped),
    every k-th word so that the list fits the 'words' cap."""
    t = ct.decode(open(path, 'rb').read())
    if t is None:
        return None
    ws = [re.split(r'[/\t ]', l, 1)[0] for l in t.split('\n')[1:]]
    ws = [w for w in ws if w]
    total = sum(len(w.encode()) + 1 for w in ws)
    k = -(-total // SOURCE_CAP['words'])
    return ct.normalize('\n'.join(ws[::max(k, 1)]))


def file_docs(tree, sources, doc_cap=DOC_CAP):
    """[(key, text)] for the recipe sources [(package, glob)...]; files named like C, C++,
    Python or Perl (NOT_CODE) are never taken."""
    docs, seen = [], set()
    for pkg, pattern in sources:
        if pattern.startswith(('zip:', 'tar:')):
            kind, arch, member = pattern.split(':', 2)
            for p, rel in tree.glob(pkg, arch):
                for name, data in archive_members(tree.path(p, rel), kind, member):
                    key = '%s/%s/%s' % (p, rel, name)
                    t = text_of(data, doc_cap)
                    if t and not looks_generated(t) and key not in seen:
                        seen.add(key)
                        docs.append((key, t))
            continue
        html_src = pattern.startswith('html:')
        if html_src:
            pattern = pattern[5:]
        for p, rel in tree.glob(pkg, pattern):
            key = p + '/' + rel
            if key in seen or (NOT_CODE.search(rel) and not (p == 'swi-prolog-core' and rel.endswith('.pl'))):
                continue
            seen.add(key)
            try:
                data = ct.read_bytes(tree.path(p, rel))
            except (OSError, EOFError, ValueError):
                continue
            if html_src:
                t = ct.decode(data)
                data = ct.html_source(t).encode('utf-8') if t else b''
            t = text_of(data, doc_cap)
            if t and not looks_generated(t):
                docs.append((key, t))
    return docs


def archive_members(path, kind, member_glob, fileobj=None):
    """(name, bytes) of the members of a zip or tar archive matching member_glob, in name
    order. 'INNER_GLOB:MEMBER_GLOB' reads the members of a tar archive inside a tar archive."""
    if kind == 'zip':
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                if fnmatch.fnmatchcase(name, member_glob) and not name.endswith('/'):
                    yield name, z.read(name)
        return
    inner, _, member = member_glob.rpartition(':')
    with tarfile.open(path, fileobj=fileobj) as t:
        members = sorted((m for m in t.getmembers() if m.isfile()), key=lambda m: m.name)
        for m in members:
            if inner and fnmatch.fnmatchcase(m.name, inner):
                yield from archive_members(m.name, 'tar', member, io.BytesIO(t.extractfile(m).read()))
            elif not inner and fnmatch.fnmatchcase(m.name, member):
                yield m.name, t.extractfile(m).read()


def with_headers(docs):
    """Each document after a `==> key <==` line."""
    return [(k, '==> %s <==\n%s' % (k, t)) for k, t in docs]


def write_docs(path, docs):
    """Documents separated by one empty line."""
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        for i, (key, text) in enumerate(docs):
            if i:
                f.write('\n')
            f.write(text)


def build(x_dir, out_dir):
    pkgs = packages()
    tree = Tree(x_dir, pkgs)
    report = []   # (file, source, docs, bytes)
    # natural languages
    for lang, by_source in sorted(lang_sources(tree).items()):
        avail = {}
        for s, docs in by_source.items():
            chosen = ct.select(docs, SOURCE_CAP[s])
            avail[s] = sum(len(t.encode()) + 1 for _, t in chosen)
        budget = ct.water_fill(avail, LANG_CAP)
        docs = []
        for s in sorted(by_source):
            chosen = ct.select(by_source[s], budget[s])
            docs += chosen
            report.append(('lang_%s.txt' % lang, s, len(chosen),
                           sum(len(t.encode()) + 1 for _, t in chosen)))
        write_docs(os.path.join(out_dir, 'lang_%s.txt' % lang), docs)
    # code, markup, data
    for name, sources, cap in CODE + MARKUP + DATA:
        chosen = ct.select(with_headers(file_docs(tree, sources)), cap)
        for pkg in sorted({k.split('/')[0] for k, _ in chosen}):
            part = [(k, t) for k, t in chosen if k.split('/')[0] == pkg]
            report.append((name + '.txt', pkg, len(part), sum(len(t.encode()) + 1 for _, t in part)))
        write_docs(os.path.join(out_dir, name + '.txt'), chosen)
    # bytes that are not text
    blobs = []
    for pkg in pkgs:
        for p, rel in tree.glob(pkg, '*'):
            if rel.endswith(('.gz', '.xz', '.png')):
                with open(tree.path(p, rel), 'rb') as f:
                    blobs.append((p + '/' + rel, f.read(64 * KB)))
    taken, total = [], 0
    for key, b in sorted(blobs, key=lambda kb: ct.hash_order(kb[0])):
        if total + len(b) <= BINARY_TAKEN:
            taken.append((key, b))
            total += len(b)
    taken.sort()
    with open(os.path.join(out_dir, 'binary.bin'), 'wb') as f:
        for key, b in taken:
            f.write(b)
        f.write(ct.prng('bltpatch broad corpus', BINARY_RANDOM))
    report.append(('binary.bin', 'compressed files (.gz .xz .png)', len(taken), total))
    report.append(('binary.bin', 'pseudo-random (SHA-256 counter mode)', 1, BINARY_RANDOM))
    with open(os.path.join(out_dir, 'SOURCES.tsv'), 'w', encoding='utf-8') as f:
        f.write('file\tsource\tdocuments\tbytes\n')
        for row in report:
            f.write('%s\t%s\t%d\t%d\n' % row)


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'packages':
        print('\n'.join(packages()))
    elif cmd == 'build':
        build(sys.argv[2], sys.argv[3])
    else:
        sys.exit('usage: broad_corpus.py packages | build X_DIR OUT_DIR')
