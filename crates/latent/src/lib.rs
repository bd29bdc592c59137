//! # bltpatch-latent
//!
//! A small byte-latent transformer (BLT, Pagnoni et al. 2024) in burn 0.22 that trains on the
//! patches of the `bltpatch` library, and the experiment that compares patching schemes on it.
//!
//! DESIGN-PLACEHOLDER

#![deny(missing_docs)]

pub mod batch;
pub mod data;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod experiment;
pub mod generate;
pub mod global;
pub mod model;
pub mod nn;
pub mod patching;
pub mod pooling;
pub mod report;
pub mod svg;
pub mod train;

pub use error::LatentError;
pub use experiment::{ExperimentOptions, run};
pub use model::{Flops, LatentConfig, LatentInput, LatentModel};
pub use patching::{EntropyModel, Layout, Patching, Scheme};
pub use pooling::PoolingKind;
