//! Fuzzing the readers of every file a user hands featleak (`.npz` features, `.pth` and
//! `.safetensors` weights, threat-model and sweep TOML, homography files, images): random bytes
//! and mutations of valid files (bytes flipped, overwritten, inserted, removed, truncated) must
//! give an error or a value, never a panic, and never make the reader hold more memory than a
//! fixed multiple of the file's size plus [`SLACK`] bytes (counted by the allocator below, per
//! thread): [`PACKED`] for compressed formats (`.npz`, images), [`PLAIN`] for the others.
//! proptest drives the cases from a fixed seed (a failure prints the input that caused it);
//! `FEATLEAK_FUZZ_CASES` sets the number of cases per reader (default 200) and
//! `FEATLEAK_FUZZ_SEED` (0–255, default 7) another fixed seed, for longer campaigns.

use featleak_attack::ThreatModel;
use featleak_datasets::pairs::read_homography;
use featleak_descriptors::sosnet::SosnetWeights;
use featleak_descriptors::state_dict::StateDictWeights;
use featleak_descriptors::{Descriptors, ExtractorInfo, FeatureSet, Keypoint, write_features};
use featleak_mitigation::sweep::SweepConfig;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// Most bytes a reader of a compressed format may hold at once per byte of its input (a
/// uniform image compresses about this much; feature files have their own, smaller bound).
const PACKED: usize = 1024;
/// The same for formats stored as they are (text, weights).
const PLAIN: usize = 16;
/// Bytes a reader may hold whatever its input (buffers, parsers' tables, OpenCV's).
const SLACK: usize = 64 << 20;

/// The system allocator, counting the bytes each thread holds and the most it held.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `f` held at once beyond what the thread held before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    (out, (PEAK.with(Cell::get) - before).max(0) as usize)
}

/// One change to a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        4 => (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        4 => (at, prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80), any::<u8>()])
            .prop_map(|(at, value)| Mutation::Set { at, value }),
        1 => (at, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (at, 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip { at, bit } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= 1 << bit;
                }
            }
            Mutation::Set { at, value } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b = *value;
                }
            }
            Mutation::Insert { at, bytes: new } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let at = at % n;
                let end = (at + len).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
        }
    }
    bytes
}

/// Random bytes, or a mutation of one of `seeds`.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        6 => (0..n, proptest::collection::vec(mutation(), 1..6))
            .prop_map(move |(i, ms)| mutate(seeds[i].clone(), &ms)),
    ]
}

fn cases() -> u32 {
    std::env::var("FEATLEAK_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200)
}

fn seed() -> u8 {
    std::env::var("FEATLEAK_FUZZ_SEED")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(7)
}

/// Feeds `read` (which reads the file it is given) random and mutated inputs written to
/// `file_name`; fails on a panic or on holding more than `expansion` bytes per input byte
/// (plus [`SLACK`]).
fn fuzz<T>(file_name: &str, expansion: usize, seeds: Vec<Vec<u8>>, read: impl Fn(&Path) -> T) {
    assert!(!seeds.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join(file_name);
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed(); 32]),
    );
    runner
        .run(&input(seeds), |bytes| {
            std::fs::write(&file, &bytes).unwrap();
            let (returned, peak) = peak_during(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&file))).is_ok()
            });
            prop_assert!(returned, "{file_name}: the reader panicked");
            let bound = expansion * bytes.len() + SLACK;
            prop_assert!(
                peak <= bound,
                "{file_name}: {} input bytes made the reader hold {peak} bytes (bound {bound})",
                bytes.len()
            );
            Ok(())
        })
        .unwrap();
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn feature_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for (i, descriptors) in [
        Descriptors::Float(ndarray::Array2::from_shape_fn((3, 8), |(r, c)| {
            (r * 8 + c) as f32
        })),
        Descriptors::Binary(ndarray::Array2::from_elem((3, 4), 0xa5)),
    ]
    .into_iter()
    .enumerate()
    {
        let features = FeatureSet {
            image_size: (20, 30),
            keypoints: (0..3)
                .map(|k| Keypoint {
                    x: k as f32 * 5.0,
                    y: 2.0,
                    size: 3.0,
                    angle: 10.0,
                    response: 0.5,
                    octave: 0,
                })
                .collect(),
            descriptors,
            extractor: ExtractorInfo {
                name: "test".into(),
                config: serde_json::json!({"gray": "cvtcolor"}),
            },
        };
        let path = dir.path().join(format!("f{i}.npz"));
        write_features(&path, &features).unwrap();
        seeds.push(std::fs::read(&path).unwrap());
    }
    let npz = featleak_descriptors::npz::MAX_EXPANSION as usize;
    // A .npy header whose length field claims 660 MB (format version 3).
    let mut long = seeds[0].clone();
    let at = long.windows(6).position(|w| w == b"\x93NUMPY").unwrap();
    long[at + 6..at + 10].copy_from_slice(&[3, 0, b'v', 0]);
    seeds.push(long);
    fuzz("f.npz", npz, seeds, |p| {
        featleak_descriptors::read_features(p).map(|f| f.keypoints.len())
    });
}

#[test]
fn pytorch_checkpoints() {
    let seeds = ["sosnet_cheap_legacy.pth", "sosnet_cheap_wrapped.pth"]
        .map(|f| fixture(&format!("descriptors/tests/fixtures/sosnet/{f}")))
        .to_vec();
    fuzz("w.pth", PLAIN, seeds, |p| SosnetWeights::load(p).is_ok());
}

/// A safetensors file of `tensors` (name, shape, dtype, bytes), written by hand.
fn safetensors(tensors: &[(&str, &[usize], &str, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, shape, dtype, bytes) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape,
                "data_offsets": [data.len(), data.len() + bytes.len()]}),
        );
        data.extend(bytes);
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

#[test]
fn safetensors_weights() {
    let f32s = |n: usize| (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let seeds = vec![
        safetensors(&[
            ("layers.0.weight", &[4, 1, 3, 3], "F32", f32s(36)),
            ("layers.1.running_mean", &[4], "F32", f32s(4)),
        ]),
        safetensors(&[("layers.0.weight", &[2, 2], "F16", vec![0; 8])]),
    ];
    fuzz("w.safetensors", PLAIN, seeds, |p| {
        SosnetWeights::load(p).is_ok()
    });
}

#[test]
fn threat_model_files() {
    let seeds = vec![
        toml::to_string(&ThreatModel::preset("desc+pos", "sift").unwrap())
            .unwrap()
            .into_bytes(),
        toml::to_string(&ThreatModel::preset("pos-only", "freak").unwrap())
            .unwrap()
            .into_bytes(),
    ];
    fuzz("threat.toml", PLAIN, seeds, |p| {
        ThreatModel::resolve(p.to_str().unwrap(), "sift").is_ok()
    });
}

#[test]
fn sweep_files() {
    let seeds = vec![
        fixture("examples/sweep.toml"),
        b"descriptors = [\"sift\"]\nkeeps = [1.0, 0.5]\n".to_vec(),
    ];
    fuzz("sweep.toml", PLAIN, seeds, |p| {
        SweepConfig::from_file(p).is_ok()
    });
}

#[test]
fn homography_files() {
    let seeds = vec![
        b"1 0 0\n0 1 0\n0 0 1\n".to_vec(),
        b"0.7882767 0.0100941 114.27\n-0.0102 0.79 55.4\n-0.00001 0.00002 1.0\n".to_vec(),
    ];
    fuzz("H_1_2", PLAIN, seeds, |p| read_homography(p).is_ok());
}

#[test]
fn images() {
    let mut seeds = ["odd_420.jpg", "grey.jpg", "exif_rotated.jpg", "scene.png"]
        .map(|f| fixture(&format!("datasets/tests/fixtures/decode/{f}")))
        .to_vec();
    // A JPEG whose frame header claims 30000×30000 pixels (it took 23 GB before headers were
    // checked against the file's size).
    let mut big = seeds[0].clone();
    let sof = big.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    big[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
    seeds.push(big);
    fuzz("image", PACKED, seeds, |p| {
        featleak_datasets::load_rgb(p).map(|i| i.dimensions())
    });
}
