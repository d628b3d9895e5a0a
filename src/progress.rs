//! Progress bars shared by the long-running commands.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` items named `what`; hidden automatically when stderr is not a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(what.to_string());
    bar
}
