//! Exporting a trained attacker in half precision: the form the zoo bundles.
//!
//! `featleak attack export --run RUN --out DIR` writes an attacker folder that `--run DIR` uses
//! like any run (its `run.json`, and a checkpoint holding the network, kernels in f16, and the run's
//! `state.json`), half the size of the run's f32 weights. Loading casts them back to f32, so
//! scores measured with `--run DIR` are the scores of exactly the weights that get bundled.

use crate::AttackError;
use crate::run::{AttackRun, MODEL, RunConfig};
use crate::training::{half_precision_bytes, load_model};
use burn::prelude::*;
use featleak_datasets::FileError;
use featleak_train::RunFolder;
use featleak_train::checkpoint::STATE;
use std::path::Path;

/// Writes `run`'s latest network (kernels in f16), with its configuration and training state, into the new
/// or empty folder `out` (a folder holding anything else is refused).
pub fn export_half(run: &Path, out: &Path) -> Result<(), AttackError> {
    if RunFolder::new(out).config().exists() {
        return Err(AttackError::ExportExists {
            folder: out.to_path_buf(),
        });
    }
    let source = RunFolder::new(run);
    let config = RunConfig::load(&source)?;
    let device = Device::flex();
    let model = load_model(&source.model(), &config.training.network, &device)?;
    let state_path = source.checkpoint().file(STATE);
    let state = std::fs::read(&state_path).map_err(FileError::io("read", &state_path))?;
    let bytes = half_precision_bytes(&model)?;
    let target = RunFolder::prepare(out, false, "an exported attacker")?;
    target.write_config(&config)?;
    target
        .checkpoint()
        .commit(&state, |dir| -> Result<(), AttackError> {
            featleak_datasets::files::write_bytes(&dir.join(MODEL), &bytes)?;
            Ok(())
        })
}
