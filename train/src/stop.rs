//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during training: the first asks the trainer to finish the
//! step in progress and write a checkpoint, so that `--resume` loses nothing; a second one exits
//! at once (the last checkpoint stays valid: checkpoints are atomic).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (the first call; later ones do nothing). Where it cannot be installed,
/// says so on stderr and leaves the signals' default (exit at once; the last checkpoint still
/// resumes).
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let handler = || {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting now");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the current step and writing a checkpoint");
        };
        if let Err(e) = ctrlc::set_handler(handler) {
            eprintln!(
                "warning: cannot catch Ctrl-C ({e}); an interruption loses the steps since the last checkpoint"
            );
        }
    });
}

/// Whether an interruption was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
