//! The batch layout that Hugging Face transformers' BLT takes:
//! `BltModel.forward(input_ids=..., patch_lengths=...)`.
//!
//! transformers' BLT byte tokenizer reads byte `b` as token `b + 4` (ids 0..4 are `<boe>`, `<s>`,
//! `</s>` and `<pad>`) and starts a sequence with `<s>` (BOS). Its own entropy patcher gives the
//! BOS token a patch of length 1 and always starts a patch at the first byte, which is exactly a
//! bltpatch segmentation with one patch of 1 in front. `BltModel` derives each position's patch
//! from the cumulative sums of a `patch_lengths` row, so a row must cover the whole padded
//! sequence.
//!
//! The padding of a shorter document joins its last patch. That keeps every real position's
//! output what the document gets alone, unpadded: `BltModel`'s local decoder reads, at position
//! `t`, the global state of the patches of `patch_lengths[:, 1:]` that start at or before `t`,
//! so the global state of a document's final patch is read by no real position (its last byte
//! reads the patch before), and padding pooled into that patch changes nothing real. Padding
//! in a patch of its own would start a patch at the last byte's position and hand that byte
//! another global state. A document without bytes has no patch to join: its padding is a patch
//! after BOS.

use crate::Error;

/// transformers' BLT token id for the beginning of a sequence (`<s>`).
pub const HF_BOS_ID: u32 = 1;
/// transformers' BLT token id for padding (`<pad>`).
pub const HF_PAD_ID: u32 = 3;
/// Byte `b` is token `b + HF_BYTE_OFFSET` in transformers' BLT.
pub const HF_BYTE_OFFSET: u32 = 4;

/// A batch in the layout of transformers' `BltModel`, as row-major arrays.
///
/// With `n_b` the length of document `b` and `seq_len = 1 + max_b n_b`:
///
/// - `input_ids` `[batch, seq_len]`: [`HF_BOS_ID`], then each byte plus [`HF_BYTE_OFFSET`], then
///   [`HF_PAD_ID`] up to `seq_len`;
/// - `attention_mask` `[batch, seq_len]`: 1 for BOS and the document's bytes, 0 for padding;
/// - `patch_lengths` `[batch, max_patches]`: 1 (the BOS patch), the document's patch lengths
///   with its padding `seq_len - 1 - n_b` added to the last (a patch of its own for an empty
///   document), then 0 up to `max_patches`. Every row sums to `seq_len`.
///
/// ```
/// use bltpatch::HfLayout;
///
/// let docs: [&[u8]; 2] = [b"abcde", b"xy"];
/// let lengths = [vec![2, 3], vec![1, 1]];
/// let hf = HfLayout::from_lengths(&docs, &lengths).unwrap();
/// assert_eq!((hf.batch, hf.seq_len, hf.max_patches), (2, 6, 3));
/// assert_eq!(hf.patch_lengths, [1, 2, 3, /* */ 1, 1, 4]);
/// assert_eq!(&hf.input_ids[6..], &[1, b'x' as u32 + 4, b'y' as u32 + 4, 3, 3, 3]);
/// assert_eq!(&hf.attention_mask[6..], &[1, 1, 1, 0, 0, 0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfLayout {
    /// Number of documents.
    pub batch: usize,
    /// Tokens per row: BOS plus the longest document.
    pub seq_len: usize,
    /// Row width of `patch_lengths`.
    pub max_patches: usize,
    /// `[batch, seq_len]`, row-major.
    pub input_ids: Vec<u32>,
    /// `[batch, seq_len]`, row-major: 1 for BOS and bytes, 0 for padding.
    pub attention_mask: Vec<u8>,
    /// `[batch, max_patches]`, row-major; every row sums to `seq_len`.
    pub patch_lengths: Vec<u32>,
}

impl HfLayout {
    /// Lays out documents and their patch lengths (as [`Patcher::segment`](crate::Patcher::segment)
    /// gives them). `O(batch × (seq_len + max_patches))`.
    ///
    /// # Errors
    /// [`Error::Usage`] if `lengths` does not hold one segmentation per document, each summing to
    /// its document's length; [`Error::TooLong`] if a document holds more than `u32::MAX - 2`
    /// bytes ([`check_batch_len`]).
    pub fn from_lengths(docs: &[&[u8]], lengths: &[Vec<usize>]) -> Result<Self, Error> {
        if docs.len() != lengths.len() {
            return Err(Error::Usage(format!(
                "{} documents but {} segmentations",
                docs.len(),
                lengths.len()
            )));
        }
        crate::check_batch_len(docs)?;
        if let Some(b) =
            (0..docs.len()).find(|&b| lengths[b].iter().sum::<usize>() != docs[b].len())
        {
            return Err(Error::Usage(format!(
                "the patch lengths of document {b} do not sum to its {} bytes",
                docs[b].len()
            )));
        }
        let max_len = docs.iter().map(|d| d.len()).max().unwrap_or(0);
        let seq_len = max_len + 1;
        // BOS, the document's patches, and a patch for the padding of an empty document.
        let row_patches =
            |b: usize| 1 + lengths[b].len() + usize::from(docs[b].is_empty() && max_len > 0);
        let max_patches = (0..docs.len()).map(row_patches).max().unwrap_or(0);
        let batch = docs.len();
        let mut input_ids = vec![HF_PAD_ID; batch * seq_len];
        let mut attention_mask = vec![0u8; batch * seq_len];
        let mut patch_lengths = vec![0u32; batch * max_patches];
        for (b, doc) in docs.iter().enumerate() {
            let ids = &mut input_ids[b * seq_len..(b + 1) * seq_len];
            ids[0] = HF_BOS_ID;
            for (id, &byte) in ids[1..].iter_mut().zip(doc.iter()) {
                *id = byte as u32 + HF_BYTE_OFFSET;
            }
            attention_mask[b * seq_len..b * seq_len + 1 + doc.len()].fill(1);
            let row = &mut patch_lengths[b * max_patches..(b + 1) * max_patches];
            row[0] = 1;
            for (o, &l) in row[1..].iter_mut().zip(&lengths[b]) {
                *o = l as u32;
            }
            // The padding joins the last patch (the module docs say why).
            let padding = max_len - doc.len();
            if padding > 0 {
                row[lengths[b].len().max(1)] += padding as u32;
            }
        }
        Ok(Self {
            batch,
            seq_len,
            max_patches,
            input_ids,
            attention_mask,
            patch_lengths,
        })
    }
}

/// Checks that every document fits the `u32` batch layouts ([`crate::BatchLayout`],
/// [`HfLayout`]): at most `u32::MAX - 2` bytes, so that a row of BOS and bytes still counts
/// its length in a `u32`.
///
/// # Errors
/// [`Error::TooLong`] naming the first document that does not fit.
pub fn check_batch_len(docs: &[&[u8]]) -> Result<(), Error> {
    const MAX: usize = u32::MAX as usize - 2;
    match docs.iter().position(|d| d.len() > MAX) {
        Some(b) => Err(Error::TooLong {
            doc: b,
            bytes: docs[b].len(),
            limit: MAX,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BltModel._patch_ids_from_lengths`, as transformers computes it: the patch of position
    /// `t` is `#{p : start[p] <= t} - 1` over the cumulative starts of the row.
    fn hf_patch_ids(row: &[u32], seq_len: usize) -> Vec<usize> {
        let mut starts = vec![0u64];
        for &l in row.iter().take(row.len().saturating_sub(1)) {
            starts.push(starts.last().unwrap() + l as u64);
        }
        (0..seq_len as u64)
            .map(|t| starts.iter().filter(|&&s| s <= t).count() - 1)
            .collect()
    }

    #[test]
    fn rows_cover_the_sequence_and_patches_hold_their_bytes() {
        let docs: [&[u8]; 3] = [b"hello world", b"", b"abc"];
        let lengths = [vec![5, 1, 5], vec![], vec![1, 2]];
        let hf = HfLayout::from_lengths(&docs, &lengths).unwrap();
        assert_eq!((hf.batch, hf.seq_len, hf.max_patches), (3, 12, 4));
        assert_eq!(
            hf.patch_lengths,
            [1, 5, 1, 5, /* */ 1, 11, 0, 0, /* */ 1, 1, 10, 0]
        );
        for (b, doc) in docs.iter().enumerate() {
            let row = &hf.patch_lengths[b * 4..(b + 1) * 4];
            assert_eq!(row.iter().map(|&l| l as usize).sum::<usize>(), hf.seq_len);
            assert_eq!(row[0], 1, "the BOS patch");
            let ids = hf_patch_ids(row, hf.seq_len);
            assert_eq!(ids[0], 0, "BOS is patch 0");
            // Byte i of the document sits at position i + 1, in patch 1 + (its patch).
            let mut expected = Vec::new();
            for (p, &l) in lengths[b].iter().enumerate() {
                expected.extend(std::iter::repeat_n(p + 1, l));
            }
            assert_eq!(&ids[1..1 + doc.len()], expected.as_slice());
            // Padding joins the last patch (BOS's successor for an empty document).
            let last = ids[doc.len()].max(1);
            assert!(ids[1 + doc.len()..].iter().all(|&p| p == last));
            // The decoder's view, `patch_lengths[:, 1:]`, starts no patch inside a document
            // that it does not start without the padding.
            let alone: Vec<u32> = std::iter::once(1)
                .chain(lengths[b].iter().map(|&l| l as u32))
                .collect();
            let unpadded = hf_patch_ids(&alone[1..], doc.len() + 1);
            assert_eq!(&hf_patch_ids(&row[1..], hf.seq_len)[..=doc.len()], unpadded);
            let tokens = &hf.input_ids[b * hf.seq_len..(b + 1) * hf.seq_len];
            assert_eq!(tokens[0], HF_BOS_ID);
            let bytes: Vec<u8> = tokens[1..=doc.len()]
                .iter()
                .map(|&t| (t - HF_BYTE_OFFSET) as u8)
                .collect();
            assert_eq!(&bytes, doc);
            assert!(tokens[1 + doc.len()..].iter().all(|&t| t == HF_PAD_ID));
            let mask = &hf.attention_mask[b * hf.seq_len..(b + 1) * hf.seq_len];
            assert_eq!(
                mask.iter().map(|&m| m as usize).sum::<usize>(),
                1 + doc.len()
            );
        }
    }

    #[test]
    fn empty_batch_and_inconsistent_lengths() {
        let hf = HfLayout::from_lengths(&[], &[]).unwrap();
        assert_eq!((hf.batch, hf.seq_len, hf.max_patches), (0, 1, 0));
        // Only empty documents: BOS alone.
        let hf = HfLayout::from_lengths(&[b"", b""], &[vec![], vec![]]).unwrap();
        assert_eq!((hf.seq_len, hf.max_patches), (1, 1));
        assert_eq!((hf.input_ids, hf.patch_lengths), (vec![1, 1], vec![1, 1]));
        let docs: [&[u8]; 1] = [b"abc"];
        assert!(matches!(
            HfLayout::from_lengths(&docs, &[vec![1, 1]]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            HfLayout::from_lengths(&docs, &[]),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn a_document_of_4_gib_is_an_error() {
        // Zeroed pages from the allocator: nothing is touched.
        let big = vec![0u8; u32::MAX as usize];
        let docs: [&[u8]; 2] = [b"small", &big];
        match check_batch_len(&docs) {
            Err(Error::TooLong { doc: 1, bytes, .. }) => assert_eq!(bytes, big.len()),
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert!(check_batch_len(&docs[..1]).is_ok());
    }
}
