//! # bltpatch
//!
//! A byte-level entropy-patching tokenizer. A small causal next-byte model with a bounded
//! context predicts how hard each byte is; patch (token) boundaries go where that entropy is high
//! or jumps. Because the model is causal and bounded, a decoder that produces bytes one at a time
//! finds exactly the same boundaries as batch segmentation, so no patch length is ever stored.
//!
//! This crate is the entry point for library users: it loads a checkpoint (or the model embedded
//! in the crate) as a [`Model`] and re-exports the framework-free machinery of
//! [`bltpatch_core`]: segmentation of one slice, of a batch in BLT's layout, the streaming
//! decoder, parallel chunked segmentation and threshold calibration.
//!
//! ```
//! use bltpatch::Model;
//!
//! let model = Model::default_model();
//! let cfg = model.patch_config().expect("the default model carries a calibrated threshold");
//! let text = "Entropy patching puts boundaries where the next byte is hard to predict.";
//! let lengths = bltpatch::segment(&model, text.as_bytes(), &cfg);
//! assert_eq!(lengths.iter().sum::<usize>(), text.len());
//!
//! // The generation-time decoder finds the same boundaries, one byte at a time.
//! let mut decoder = bltpatch::StreamingDecoder::new(&model, cfg);
//! decoder.push_slice(text.as_bytes(), |_| {});
//! assert_eq!(decoder.finish(), lengths);
//! ```

mod load;

pub use bltpatch_checkpoint as checkpoint;
pub use bltpatch_core::*;
pub use load::{DEFAULT_CONFIG_JSON, LoadError, Model};

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
