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
}
