//! Data plumbing for featleak: finding images in folders, seeded train/val/test splits,
//! decoding images to RGB/grey (u8 and f32), resize + centre-crop geometry shared with the
//! feature side, procedural photo-like scenes for runs without data, atomic file writes, the
//! seeded random streams every run draws from, job-array shards, and resumable, checksummed
//! downloaders for public benchmark data.
//!
//! This crate sits at the bottom of the workspace and depends on no other featleak crate.

#![deny(missing_docs)]

pub mod atomic;
pub mod discover;
pub mod fetch;
pub mod files;
pub mod load;
pub mod manifest;
pub mod pairs;
pub mod schedule;
pub mod shard;
pub mod split;
pub mod synthetic;
pub mod transform;
pub mod warp;

pub use discover::{IMAGE_EXTENSIONS, find_files, find_images, find_named_images, image_name};
pub use files::FileError;
pub use load::{
    GrayConversion, ImageLoadError, load_rgb, rgb_to_gray, rgb_to_gray_libpng, rgb_to_gray_pil,
    to_f32_gray, to_f32_rgb,
};
pub use pairs::{FoundPairs, HomographyPair, PairError, find_pairs};
pub use shard::{Shard, ShardError};
pub use split::{Split, SplitFractions, split_seeded};
pub use transform::ResizeCrop;

/// What a long job calls once per item done, from any thread (a progress bar's increment).
pub type Tick = Box<dyn Fn() + Send + Sync>;
