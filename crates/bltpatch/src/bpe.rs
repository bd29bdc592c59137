//! The BPE baseline: the boundaries of OpenAI's cl100k BPE tokens, as patches.
//!
//! Tokens come from the `bpe-openai` crate (`cl100k_base`, which encodes exactly as tiktoken
//! does: the same pre-tokenisation regex, then byte-pair merges). A token's length in bytes is
//! the length of its byte string, so the patch lengths sum to the input's length.
//!
//! The tokenizer reads text: bytes that are not valid UTF-8 are cut out, each invalid sequence
//! (as [`<[u8]>::utf8_chunks`] reports it) becomes one patch of its own, and each valid run
//! between them is tokenised on its own.
//!
//! Long inputs are tokenised in blocks that end where the pre-tokenisation always splits (after
//! a line feed that an ASCII letter follows), so [`bpe_lengths_into`] keeps memory bounded and
//! gives the lengths of [`bpe_lengths`] over the whole input (a test compares them on real
//! text).
//!
//! ## When a BPE boundary is known ([`bpe_known_at`])
//!
//! A token boundary can depend on bytes well after it: the pre-tokeniser's regex may extend a
//! match (a word goes on, a run of spaces ends in a line feed), and byte-pair merges inside a
//! pre-token depend on all of its bytes. A model that reads patches while it predicts bytes one at
//! a time (a byte-latent transformer's decoder) may use a patch only once the bytes seen so far
//! *determine* it, whatever bytes come next. [`bpe_known_at`] gives, for each patch, the number
//! of bytes after which that holds:
//!
//! - The pre-tokens are found again with the same regex run as a lazy DFA (leftmost-first, as
//!   `bpe-openai` runs it), one pre-token at a time from its start. A pre-token is **settled**
//!   once no continuation can change the match: every byte leads the automaton to its dead state
//!   and the end of the text adds no match. That happens after the first character that no
//!   pattern can take (after `word` the space of `word next`), or as soon as a pattern is complete
//!   (the third digit of `\p{N}{1,3}`); the position is rounded up to the end of a character, so a
//!   settled pre-token never rests on half a character. This is exact at the level of
//!   pre-tokens: while the automaton can still grow the match, some continuation moves the
//!   pre-token's end. A pre-token still open at the end of a valid run is settled when the run
//!   certainly ends: once the invalid sequence that ends it and the byte after that sequence are
//!   seen (that byte fixes the sequence's length); never when the run ends the input.
//! - A token's end is known when its pre-token is settled (merges inside a pre-token depend on
//!   all of it), and never before every earlier token's end is known (the known-at positions
//!   are non-decreasing). An invalid sequence's end is known one byte after it.
//!
//! So the answer is a function of the bytes up to it: segmenting a prefix `x[0..t)` gives the same
//! patches with the same known-at positions for every patch known at `t` or earlier, and tokenising
//! any longer prefix `x[0..t')`, `t' >= t`, keeps those patches. Tests check both by brute force
//! on text in many scripts, code and random bytes, and that [`bpe_known_at`]'s patches are
//! [`bpe_lengths`]'s.
//!
//! Why not the smallest `t` after which the *given* input's prefixes stop changing a boundary:
//! that depends on the bytes after `t` (whether they happen to leave the boundary alone), so a
//! decoder that used it would learn about bytes it has not seen yet.

use std::cell::RefCell;
use std::sync::LazyLock;

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::known::{KnownPatches, NEVER};

/// Bytes per block of [`bpe_lengths_into`], before looking for a cut.
const BLOCK: usize = 1 << 20;

/// Patch lengths of cl100k BPE tokens over `bytes`.
///
/// ```
/// let lengths = bltpatch::bpe::bpe_lengths(b"Hello world, hello!");
/// assert_eq!(lengths, [5, 6, 1, 6, 1]); // "Hello" " world" "," " hello" "!"
/// ```
pub fn bpe_lengths(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::with_capacity(bytes.len() / 4 + 1);
    tokenise(bytes, &mut |l| out.push(l));
    out
}

/// Like [`bpe_lengths`], handing each length to `emit` in order and tokenising a long input in
/// blocks (bounded memory).
pub fn bpe_lengths_into(bytes: &[u8], mut emit: impl FnMut(usize)) {
    let mut start = 0;
    while start < bytes.len() {
        let end = block_end(bytes, start);
        tokenise(&bytes[start..end], &mut emit);
        start = end;
    }
}

/// The end of the block that starts at `start`: the first safe cut at or after
/// `start + BLOCK`, or the end of the input.
fn block_end(bytes: &[u8], start: usize) -> usize {
    let from = start.saturating_add(BLOCK);
    if from >= bytes.len() {
        return bytes.len();
    }
    bytes[from..]
        .windows(2)
        .position(|w| w[0] == b'\n' && w[1].is_ascii_alphabetic())
        .map_or(bytes.len(), |p| from + p + 1)
}

fn tokenise(bytes: &[u8], emit: &mut dyn FnMut(usize)) {
    let tok = bpe_openai::cl100k_base();
    for chunk in bytes.utf8_chunks() {
        let text = chunk.valid();
        if !text.is_empty() {
            for id in tok.encode(text) {
                emit(tok.bpe.token_len(id));
            }
        }
        // One patch per invalid byte sequence, as utf8_chunks reports it.
        if !chunk.invalid().is_empty() {
            emit(chunk.invalid().len());
        }
    }
}

/// cl100k's pre-tokenisation as `bpe-openai` writes it: tiktoken's regex with the negative
/// look-ahead `\s+(?!\S)` rewritten as the second pattern `\s+\s`, whose last character is
/// given back to the next pre-token ([`GIVES_BACK_LAST`]).
const PRE_TOKEN_PATTERNS: [&str; 3] = [
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+$",
    r"\s+\s",
    r"\s+",
];

/// Whether a match of each pattern gives its last character back.
const GIVES_BACK_LAST: [bool; 3] = [false, true, false];

/// The pre-tokeniser as a lazy DFA with leftmost-first semantics (the search `bpe-openai` runs),
/// walked byte by byte so that we see when a match can no longer change.
static PRE_TOKENS: LazyLock<DFA> = LazyLock::new(|| {
    DFA::builder()
        .configure(DFA::config().match_kind(MatchKind::LeftmostFirst))
        .build_many(&PRE_TOKEN_PATTERNS)
        .expect("the cl100k pre-tokenisation patterns compile")
});

/// A pre-token `[start, end)` of a valid run (offsets in the run) and the absolute position at
/// which it is settled ([`NEVER`] if the input does not settle it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PreToken {
    start: usize,
    end: usize,
    settled_at: usize,
}

/// The pre-tokens of `text` (valid UTF-8, a whole run), which starts at absolute position `base`;
/// `run_end_known_at` is the absolute position at which the end of the run is certain.
fn pre_tokens(text: &[u8], base: usize, run_end_known_at: usize, out: &mut Vec<PreToken>) {
    CACHE.with_borrow_mut(|cache| pre_tokens_with(cache, text, base, run_end_known_at, out));
}

thread_local! {
    /// The lazy DFA's transition cache (filled as inputs need states), one per thread.
    static CACHE: RefCell<Cache> = RefCell::new(PRE_TOKENS.create_cache());
}

fn pre_tokens_with(
    cache: &mut Cache,
    text: &[u8],
    base: usize,
    run_end_known_at: usize,
    out: &mut Vec<PreToken>,
) {
    let dfa = &*PRE_TOKENS;
    let anchored = start::Config::new().anchored(Anchored::Yes);
    let mut start = 0;
    while start < text.len() {
        let mut sid = dfa
            .start_state(cache, &anchored)
            .expect("the pre-tokeniser has an anchored start state");
        // The longest match so far, `(end, pattern)`; matches show one byte late.
        let mut found: Option<(usize, usize)> = None;
        let mut settled_at = run_end_known_at;
        let mut i = start;
        loop {
            if i == text.len() {
                sid = dfa.next_eoi_state(cache, sid).expect("no quit bytes");
                if sid.is_match() {
                    found = Some((i, dfa.match_pattern(cache, sid, 0).as_usize()));
                }
                break;
            }
            sid = dfa.next_state(cache, sid, text[i]).expect("no quit bytes");
            if sid.is_match() {
                found = Some((i, dfa.match_pattern(cache, sid, 0).as_usize()));
            }
            if cannot_grow(dfa, cache, sid) {
                settled_at = base + char_end(text, i);
                break;
            }
            i += 1;
        }
        let (mut end, pattern) = found.expect("every character starts a pre-token");
        if GIVES_BACK_LAST[pattern] {
            end = last_char_start(text, end);
        }
        assert!(end > start, "a pre-token holds at least one character");
        out.push(PreToken {
            start,
            end,
            settled_at,
        });
        start = end;
    }
}

/// Whether no continuation can change the match found so far from state `sid`: every byte
/// leads to the dead state (a live state, or a match state, would mean a longer match) and the
/// end of the text gives no match.
fn cannot_grow(dfa: &DFA, cache: &mut Cache, sid: LazyStateID) -> bool {
    if sid.is_dead() {
        return true;
    }
    let clears = cache.clear_count();
    let settled = dfa
        .byte_classes()
        .representatives(..)
        .all(|unit| match unit.as_u8() {
            Some(b) => dfa
                .next_state(cache, sid, b)
                .expect("no quit bytes")
                .is_dead(),
            None => !dfa
                .next_eoi_state(cache, sid)
                .expect("no quit bytes")
                .is_match(),
        });
    // A cleared cache would invalidate `sid`; the pre-tokeniser has far fewer states than the
    // cache holds.
    assert_eq!(
        cache.clear_count(),
        clears,
        "the lazy DFA's cache was cleared"
    );
    settled
}

/// The end of the character of valid UTF-8 `text` that holds byte `i`.
fn char_end(text: &[u8], i: usize) -> usize {
    let mut end = i + 1;
    while end < text.len() && (text[end] & 0xc0) == 0x80 {
        end += 1;
    }
    end
}

/// The start of the last character of valid UTF-8 `text[..end]`.
fn last_char_start(text: &[u8], end: usize) -> usize {
    let mut at = end - 1;
    while at > 0 && (text[at] & 0xc0) == 0x80 {
        at -= 1;
    }
    at
}

/// cl100k BPE patches of `bytes` (the lengths of [`bpe_lengths`]) and, for each patch, the
/// number of bytes that must be seen before its end is certain whatever follows
/// ([`NEVER`] when `bytes` does not settle it, as for the last patch). See the module docs.
/// `O(n)` automaton steps plus the merges; the pre-token after a run of whitespace rescans
/// that run.
///
/// ```
/// use bltpatch::bpe::bpe_known_at;
/// use bltpatch::NEVER;
///
/// let p = bpe_known_at(b"Hello world, hello!");
/// assert_eq!(p.lengths, [5, 6, 1, 6, 1]); // "Hello" " world" "," " hello" "!"
/// // "Hello" ends for certain once the space after it is seen; " world" once the comma is.
/// assert_eq!(p.known_at, [6, 12, 13, 19, NEVER]);
/// ```
pub fn bpe_known_at(bytes: &[u8]) -> KnownPatches {
    let tok = bpe_openai::cl100k_base();
    let mut out = KnownPatches::default();
    let mut pieces = Vec::new();
    let mut pos = 0;
    for chunk in bytes.utf8_chunks() {
        let text = chunk.valid().as_bytes();
        let invalid = chunk.invalid().len();
        // The run's end is certain once the invalid sequence after it and the byte after that
        // sequence (which fixes its length) are seen.
        let after_invalid = pos + text.len() + invalid;
        let run_end_known_at = if invalid > 0 && after_invalid < bytes.len() {
            after_invalid + 1
        } else {
            NEVER
        };
        pieces.clear();
        pre_tokens(text, pos, run_end_known_at, &mut pieces);
        for piece in &pieces {
            for id in tok
                .bpe
                .encode_via_backtracking(&text[piece.start..piece.end])
            {
                out.push(tok.bpe.token_len(id), piece.settled_at);
            }
        }
        if invalid > 0 {
            out.push(invalid, run_end_known_at);
        }
        pos = after_invalid;
    }
    out.seal();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_cover_the_input_and_match_token_bytes() {
        let text = include_bytes!("../../../datasets/tiny.txt");
        let lengths = bpe_lengths(text);
        assert_eq!(lengths.iter().sum::<usize>(), text.len());
        assert!(lengths.iter().all(|&l| l >= 1));
        // The tokens' bytes, concatenated, are the text.
        let tok = bpe_openai::cl100k_base();
        let s = std::str::from_utf8(text).unwrap();
        let ids = tok.encode(s);
        assert_eq!(ids.len(), lengths.len());
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| tok.bpe.token_bytes(id).to_vec())
            .collect();
        assert_eq!(bytes, text);
    }

    #[test]
    fn invalid_utf8_becomes_patches_of_its_own() {
        let mut bytes = b"abc ".to_vec();
        bytes.extend([0xff, 0xfe]);
        bytes.extend(b" def");
        let lengths = bpe_lengths(&bytes);
        assert_eq!(lengths.iter().sum::<usize>(), bytes.len());
        assert_eq!(lengths, [3, 1, 1, 1, 4]);
    }

    #[test]
    fn blocks_give_the_whole_input_lengths() {
        let text: Vec<u8> = include_bytes!("../../../datasets/en_books_slice.txt")
            .iter()
            .chain(include_bytes!("../../../datasets/code_rust_slice.txt"))
            .copied()
            .cycle()
            .take(3 * BLOCK + 12345)
            .collect();
        let mut blocked = Vec::new();
        bpe_lengths_into(&text, |l| blocked.push(l));
        assert_eq!(blocked, bpe_lengths(&text));
    }

    /// Text in many scripts, code, and random bytes (invalid UTF-8).
    fn texts() -> Vec<&'static [u8]> {
        vec![
            include_bytes!("../../../datasets/tiny.txt"),
            include_bytes!("../../../datasets/en_books_slice.txt"),
            include_bytes!("../../../datasets/code_rust_slice.txt"),
            include_bytes!("../../../datasets/heldout/ar_docs.txt"),
            include_bytes!("../../../datasets/heldout/c_src.txt"),
            include_bytes!("../../../datasets/heldout/de_quotes.txt"),
            include_bytes!("../../../datasets/heldout/dz_docs.txt"),
            include_bytes!("../../../datasets/heldout/en_gcide.txt"),
            include_bytes!("../../../datasets/heldout/hi_docs.txt"),
            include_bytes!("../../../datasets/heldout/ja_docs.txt"),
            include_bytes!("../../../datasets/heldout/km_docs.txt"),
            include_bytes!("../../../datasets/heldout/perl_pod.txt"),
            include_bytes!("../../../datasets/heldout/python_src.py.txt"),
            include_bytes!("../../../datasets/heldout/random.bin"),
            include_bytes!("../../../datasets/heldout/ru_quotes.txt"),
            include_bytes!("../../../datasets/heldout/zh_quotes.txt"),
            // Runs of spaces and tabs before line feeds and words, CRLF, digits, contractions,
            // a character split by invalid bytes.
            b"a  b   \n  c\t \r\n\r\n   d 1234567 x's they'RE  \t\t\n\n  \xe2\x82 \xff\xe2\x82\xac! ",
        ]
    }

    /// Windows of `len` bytes at `count` evenly spaced offsets of each text.
    fn windows(len: usize, count: usize) -> Vec<&'static [u8]> {
        let mut out = Vec::new();
        for text in texts() {
            let n = len.min(text.len());
            let room = text.len() - n;
            for i in 0..count {
                let at = if count == 1 {
                    0
                } else {
                    room * i / (count - 1)
                };
                out.push(&text[at..at + n]);
            }
        }
        out
    }

    #[test]
    fn pre_tokens_are_bpe_openais() {
        let tok = bpe_openai::cl100k_base();
        for text in texts() {
            for chunk in text.utf8_chunks() {
                let text = chunk.valid();
                let mut ours = Vec::new();
                pre_tokens(text.as_bytes(), 0, NEVER, &mut ours);
                let ours: Vec<&str> = ours.iter().map(|p| &text[p.start..p.end]).collect();
                let theirs: Vec<&str> = tok.split(text).collect();
                assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn known_at_patches_are_bpe_lengths() {
        for w in windows(512, 4) {
            let known = bpe_known_at(w);
            assert_eq!(known.lengths, bpe_lengths(w));
            let mut end = 0;
            for (p, (&len, &k)) in known.lengths.iter().zip(&known.known_at).enumerate() {
                end += len;
                assert!(k >= end, "patch {p} known at {k} before its end {end}");
                assert!(p == 0 || k >= known.known_at[p - 1]);
            }
            assert_eq!(
                known.known_at.last(),
                Some(&NEVER).filter(|_| !w.is_empty())
            );
        }
    }

    /// For patch `p` of `full` (ending at `e`), the smallest `t > e` such that tokenising
    /// `w[0..t')` gives the same first `p + 1` patch lengths (so the same boundaries up to `e`,
    /// `e` included) for every `t'` in `t..=n`, found by tokenising every prefix from the end. This is the earliest a boundary could be taken as known *given the rest of
    /// the window*; the rest being unknown to a reader, `known_at` can only be later.
    fn settled_in_window(w: &[u8], full: &[usize]) -> Vec<usize> {
        let mut out = vec![w.len() + 1; full.len()];
        let mut agree_all = full.len(); // patches agreeing for every prefix seen so far
        for t in (0..=w.len()).rev() {
            let prefix = bpe_lengths(&w[..t]);
            let mut agree = prefix.iter().zip(full).take_while(|(a, b)| a == b).count();
            if agree > 0 && agree == prefix.len() {
                agree -= 1; // the prefix's last patch ends at `t`, not at a boundary
            }
            agree_all = agree_all.min(agree);
            for slot in out.iter_mut().take(agree_all) {
                *slot = t;
            }
        }
        out
    }

    #[test]
    fn known_patches_survive_every_longer_prefix() {
        let (mut patches, mut known, mut earliest) = (0, 0, 0);
        for w in windows(256, 2) {
            let full = bpe_known_at(w);
            let settled = settled_in_window(w, &full.lengths);
            for (p, (&k, &s)) in full.known_at.iter().zip(&settled).enumerate() {
                assert!(
                    k >= s,
                    "patch {p} of {:?} taken as known at {k}, but a longer prefix moves it \
                     (settled only at {s})",
                    String::from_utf8_lossy(w)
                );
                patches += 1;
                known += (k != NEVER) as usize;
                earliest += (k == s) as usize;
            }
        }
        // Not vacuous: most patches are known inside their window.
        assert!(known * 10 > patches * 9, "{known} of {patches} known");
        assert!(earliest > 0);
    }

    #[test]
    fn known_at_is_decided_by_the_prefix() {
        for w in windows(256, 2) {
            let full = bpe_known_at(w);
            for t in 0..=w.len() {
                let prefix = bpe_known_at(&w[..t]);
                let k = full.closed(t);
                assert_eq!(prefix.closed(t), k, "patches known at {t}");
                assert_eq!(prefix.lengths[..k], full.lengths[..k]);
                assert_eq!(prefix.known_at[..k], full.known_at[..k]);
            }
        }
    }

    #[test]
    fn known_patches_survive_any_continuation() {
        // Continuations that stress the pre-tokeniser: more of a word, spaces then a line
        // feed, digits, an apostrophe, a multi-byte letter, invalid bytes, other text.
        let tails: [&[u8]; 9] = [
            b"xyz ",
            b"     \n",
            b" \t \r\nnext",
            b"0123456789",
            b"'s 're",
            "\u{e9}t\u{e9} \u{3000}\u{4e2d}".as_bytes(),
            b"\xff\xc3",
            b"\xa9more",
            include_bytes!("../../../datasets/heldout/c_src.txt"),
        ];
        for w in windows(192, 2) {
            for t in (0..=w.len()).step_by(7) {
                let known = bpe_known_at(&w[..t]);
                let k = known.closed(t);
                for tail in tails {
                    let mut text = w[..t].to_vec();
                    text.extend_from_slice(&tail[..tail.len().min(300)]);
                    let longer = bpe_known_at(&text);
                    assert_eq!(longer.lengths[..k], known.lengths[..k]);
                    assert_eq!(longer.known_at[..k], known.known_at[..k]);
                }
            }
        }
    }
}
