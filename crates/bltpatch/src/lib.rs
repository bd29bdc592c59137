//! # bltpatch
//!
//! A byte-level entropy-patching tokenizer. A small causal next-byte model with a bounded
//! context predicts how hard each byte is; patch (token) boundaries go where that entropy is high
//! or jumps, or where the entropy summed over a patch reaches a budget. Because the model is
//! causal and bounded, a decoder that produces bytes one at a time finds exactly the same
//! boundaries as batch segmentation, so no patch length is ever stored.
//!
//! Load a [`Model`] (the one embedded in this crate, or a checkpoint directory), pick a
//! [`Scheme`] (its calibrated rule, another entropy rule, or a baseline: static, space, BPE),
//! and segment with a [`Patcher`]:
//!
//! ```
//! use bltpatch::Model;
//!
//! let model = Model::default_model();
//! let patcher = model.patcher().expect("the default model carries a calibrated rule");
//! let text = "Entropy patching puts boundaries where the next byte is hard to predict.";
//! let lengths = patcher.segment(text.as_bytes());
//! assert_eq!(lengths.iter().sum::<usize>(), text.len());
//!
//! // A batch in BLT's layout: patch_lengths [batch, max_patches], patch_ids [batch, max_len].
//! let docs: [&[u8]; 2] = [b"first document", b"second"];
//! let batch = patcher.segment_batch(&docs);
//! assert_eq!((batch.batch, batch.max_len), (2, 14));
//!
//! // The generation-time decoder finds the same boundaries, one byte at a time.
//! let mut decoder = patcher.decoder().unwrap();
//! let mut starts = Vec::new();
//! for (i, &b) in text.as_bytes().iter().enumerate() {
//!     if decoder.push(b) { starts.push(i) }
//! }
//! assert_eq!(starts, bltpatch::patch_starts(&lengths));
//! ```
//!
//! The rules, the streaming decoder and calibration live in [`bltpatch_core`] (no ML
//! framework); this crate adds loading, the baselines as schemes ([`bpe`]), when each patch is
//! known to a left-to-right reader ([`known`]), patch-quality
//! measures ([`quality`]), the entropy picture ([`plot`]) and the rewriting of a `hashmlp`
//! checkpoint's tables ([`widen_checkpoint`], [`quantize_checkpoint`]). Nothing here depends on
//! burn.

mod documents;
mod error;
mod hf;
mod load;
mod patcher;
mod scheme;
mod tables;

pub mod bpe;
pub mod known;
pub mod plot;
pub mod quality;

pub use bltpatch_checkpoint as checkpoint;
pub use bltpatch_core::adapt;
pub use bltpatch_core::{
    BatchLayout, BoundaryTracker, Calibration, CalibrationTarget, DEFAULT_CHUNK_LEN, Decision,
    EntropyModel, EntropyStream, LengthScanner, PatchConfig, Rule, StreamingDecoder, calibrate,
    entropies_chunked_into, lengths_from_entropies, patch_starts, segment, segment_chunked,
    segment_chunked_into, segment_streaming, segment_streaming_into, segment_with_entropies,
    space_lengths, static_lengths, surprisals_chunked_into,
};
pub use documents::Segmentation;
pub use error::Error;
pub use hf::{HF_BOS_ID, HF_BYTE_OFFSET, HF_PAD_ID, HfLayout, check_batch_len};
pub use known::{KnownPatches, NEVER};
pub use load::{DEFAULT_CONFIG_JSON, Model};
pub use patcher::{Decoder, Patcher};
pub use scheme::{Plan, RuleKind, RuleSpec, Scheme};
pub use tables::{quantize_checkpoint, widen_checkpoint};

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
