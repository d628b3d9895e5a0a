//! Scoring for featleak experiments: image metrics (PSNR, SSIM, MAE) between private images and
//! reconstructions; descriptor matching (L2 and Hamming, mutual nearest neighbours, ratio test);
//! matching accuracy on homography pairs (MMA, homography accuracy); and the tables and plots that
//! report them, and the HTML templates of the pages that show them ([`html`]).

#![deny(missing_docs)]

pub mod error;
pub mod float_nn;
pub mod gallery;
pub mod hamming;
pub mod homography;
pub mod html;
pub mod identification;
pub mod image_metrics;
pub mod lpips;
pub mod match_eval;
pub mod matching;
pub mod pair_eval;
pub mod plot;
pub mod score_report;
pub mod table;

pub use error::EvalError;
pub use image_metrics::{ImageScores, MetricError, score};
pub use matching::{Match, MatchConfig, MatchError, match_descriptors};
pub use pair_eval::{PairScores, Summary, score_matches, score_pair, summarize};
