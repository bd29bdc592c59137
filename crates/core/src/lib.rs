//! # bltpatch-core
//!
//! The framework-free heart of bltpatch: entropy-patching rules (global, relative, combined and
//! budget), the static and space baselines, segmentation of one byte slice or a batch of
//! documents, the streaming (generation-time) decoder, parallel chunked segmentation of long
//! inputs, and calibration of a rule's parameter to a target mean patch length.
//! [`adapt`] wraps any model so that its bits/byte adapt to each document (byte counts of the
//! document's recent past mixed with the model) without moving a boundary.
//!
//! Everything here works on an [`EntropyModel`]: anything that gives, for every byte `x[i]` of a
//! document, the entropy `H[i]` (in nats) of its predicted distribution given the bounded context
//! `x[max(0, i-C) .. i)`. The model's determinism contract is written on the trait; the rules turn
//! entropies into patch boundaries exactly as described in [`rule`].
//!
//! ```
//! use bltpatch_core::{segment, PatchConfig, Rule, testing::HashModel};
//!
//! let model = HashModel::new(4);
//! let cfg = PatchConfig::new(Rule::Global { threshold: 2.0 }).unwrap();
//! let lengths = segment(&model, b"hello hello hello", &cfg);
//! assert_eq!(lengths.iter().sum::<usize>(), 17);
//! assert!(lengths.iter().all(|&l| l >= 1));
//! ```

pub mod adapt;
pub mod baseline;
pub mod batch;
pub mod calibrate;
pub mod chunked;
mod error;
pub mod model;
pub mod parallel;
pub mod reference;
pub mod rule;
pub mod segment;
pub mod stream;
pub mod testing;

pub use baseline::{SpaceTracker, StaticTracker, is_space_like, space_lengths, static_lengths};
pub use batch::{BatchLayout, segment_batch};
pub use calibrate::{Calibration, CalibrationTarget, calibrate};
pub use chunked::{
    DEFAULT_CHUNK_LEN, entropies_chunked_into, segment_chunked, segment_chunked_into,
    surprisals_chunked_into,
};
pub use error::Error;
pub use model::{EntropyModel, EntropyStream, WindowStream};
pub use parallel::par_map;
pub use rule::{
    BoundaryTracker, LengthBuilder, LengthScanner, PatchConfig, Rule, lengths_from_entropies,
    lengths_from_entropies_into,
};
pub use segment::{patch_starts, segment, segment_with_entropies};
pub use stream::{Decision, StreamingDecoder, segment_streaming, segment_streaming_into};
