//! `featleak demo`: the whole study (`featleak_study`) on the embedded default (procedural
//! scenes) or on a folder of the user's photos, with progress bars and one line per stage.

use crate::attack::Ui;
use crate::extract::Bar;
use crate::mitigate::SweepBar;
use crate::progress;
use clap::Args;
use featleak_attack::session::SessionObserver;
use featleak_descriptors::folder::FolderObserver;
use featleak_mitigation::sweep::SweepObserver;
use featleak_study::pipeline::STAGES;
use featleak_study::{StudyConfig, StudyObserver, run_study};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Your own photos instead of the generated scenes (searched recursively; centre-cropped
    /// to 4:3 and resized to 320×240 like the scenes).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Output folder; the report is OUT/report/index.html. Rerunning with the same settings
    /// reuses finished stages.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Number of scenes to generate (without --images).
    #[arg(long, default_value_t = StudyConfig::default().scenes)]
    pub scenes: usize,
    /// Use at most this many of the --images photos (0: all).
    #[arg(long, default_value_t = StudyConfig::default().max_images)]
    pub max_images: usize,
    /// Images held out as victims (never trained on); the first few also make the pairs.
    #[arg(long, default_value_t = StudyConfig::default().held_out)]
    pub held_out: usize,
    /// Descriptors the attackers and the sweep cover, comma separated: sift, freak, sosnet, xfeat, disk
    /// (features and matching accuracy always include SOSNet with the bundled weights).
    #[arg(long, value_delimiter = ',', default_value = "sift", value_parser = crate::choices::descriptor())]
    pub descriptors: Vec<String>,
    /// Side of the reconstructions (features come from twice this side).
    #[arg(long, default_value_t = StudyConfig::default().size)]
    pub size: u32,
    /// Train every attacker from scratch instead of fine-tuning the bundled attacker of its
    /// descriptor (`featleak attack zoo`) where there is one.
    #[arg(long)]
    pub no_zoo: bool,
    /// First-level width of the UNets of attackers trained from scratch (level i has width·2^i
    /// channels; 16 is the `attack train` default, 8 trains about twice as fast).
    #[arg(long, default_value_t = StudyConfig::default().width)]
    pub width: usize,
    /// Training steps of each attacker: fine-tuning steps on the training scenes for those
    /// started from the zoo (deterministic: same seed, same tables).
    #[arg(long, default_value_t = StudyConfig::default().steps)]
    pub steps: u64,
    /// Training minutes of each attacker instead of --steps (tables then depend on the
    /// machine's speed).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Fine-tuning steps of the sweep's adaptive attacker.
    #[arg(long, default_value_t = StudyConfig::default().adaptive_steps)]
    pub adaptive_steps: u64,
    /// Seed of the scenes, splits, warps and every later stage.
    #[arg(long, default_value_t = StudyConfig::default().seed)]
    pub seed: u64,
}

impl From<&DemoArgs> for StudyConfig {
    fn from(a: &DemoArgs) -> Self {
        StudyConfig {
            images: a.images.clone(),
            out: a.out.clone(),
            scenes: a.scenes,
            max_images: a.max_images,
            held_out: a.held_out,
            descriptors: a.descriptors.clone(),
            size: a.size,
            zoo: !a.no_zoo,
            width: a.width,
            steps: a.steps,
            minutes: a.minutes,
            adaptive_steps: a.adaptive_steps,
            seed: a.seed,
        }
    }
}

/// The demo's progress: a line per stage, indented notes, and the commands' own bars.
struct DemoUi {
    start: Instant,
    attack: Ui,
    extraction: Bar,
    matching: Option<ProgressBar>,
    sweep: SweepBar,
}

impl DemoUi {
    fn finish_bars(&mut self) {
        self.attack.finish();
        self.extraction.0.finish_and_clear();
        if let Some(bar) = self.matching.take() {
            bar.finish_and_clear();
        }
        self.sweep.bar.finish_and_clear();
    }
}

impl StudyObserver for DemoUi {
    fn stage(&mut self, k: usize, what: &str) {
        self.finish_bars();
        let s = self.start.elapsed().as_secs();
        println!("[{k}/{STAGES}] {what} ({}:{:02} elapsed)", s / 60, s % 60);
    }
    fn note(&mut self, line: &str) {
        println!("    {line}");
    }
    fn extraction(&self) -> &dyn FolderObserver {
        &self.extraction
    }
    fn matching(&mut self, descriptor: &str, total: usize) -> featleak_datasets::Tick {
        if let Some(bar) = self.matching.take() {
            bar.finish_and_clear();
        }
        let bar = progress::bar(total as u64, descriptor);
        self.matching = Some(bar.clone());
        Box::new(move || bar.inc(1))
    }
    fn attack(&mut self) -> &mut dyn SessionObserver {
        &mut self.attack
    }
    fn sweep(&mut self) -> &mut dyn SweepObserver {
        &mut self.sweep
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let mut ui = DemoUi {
        start: Instant::now(),
        attack: Ui::default(),
        extraction: Bar(progress::bar(0, "extract")),
        matching: None,
        sweep: SweepBar {
            bar: ProgressBar::hidden(),
        },
    };
    let index = run_study(&StudyConfig::from(args), &mut ui);
    ui.finish_bars();
    let index = index?;
    let s = ui.start.elapsed().as_secs();
    println!("done in {}:{:02}; open {}", s / 60, s % 60, index.display());
    Ok(ExitCode::SUCCESS)
}
