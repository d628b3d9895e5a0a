//! Training and evaluation data of the attack: images prepared at the feature resolution with
//! their features (extracted once, cached on disk), views at the reconstruction resolution with
//! consistent augmentation (random scale and crop, horizontal flip), and batches of revealed
//! features as sparse pixels plus RGB targets.

use crate::AttackError;
use crate::threat::{Share, ThreatModel};
use featleak_datasets::FileError;
use featleak_datasets::{GrayConversion, ResizeCrop, load_rgb};
use featleak_descriptors::{
    Extractor, FeatureExtractor, FeatureSet, SparseMapConfig, rasterize_sparse, read_features,
    write_features,
};
use image::{GrayImage, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// An image at the feature resolution (F×F) and its features, possibly mirrored.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Its name (path below the images folder, without extension).
    pub name: String,
    /// The image at the feature resolution.
    pub image: RgbImage,
    /// Its features, in `image`'s pixel coordinates.
    pub features: FeatureSet,
}

/// Where extracted features are cached: one `.npz` per (image file, extractor, feature
/// resolution, mirroring), keyed by a SHA-256 of those and the file's size and modification time.
pub struct FeatureCache {
    dir: Option<PathBuf>,
}

impl FeatureCache {
    /// A cache in `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    /// No cache: features are extracted every time and not written anywhere.
    pub fn none() -> Self {
        Self { dir: None }
    }

    fn key(
        &self,
        path: &Path,
        extractor: &FeatureExtractor,
        resolution: u32,
        mirrored: bool,
    ) -> String {
        let meta = std::fs::metadata(path).ok();
        let stamp = meta.map(|m| {
            (
                m.len(),
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos()),
            )
        });
        let mut h = Sha256::new();
        h.update(
            path.canonicalize()
                .unwrap_or_else(|_| path.into())
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(format!(
            "{stamp:?}|{}|{resolution}|{mirrored}",
            serde_json::to_string(&extractor.info()).expect("serialisable")
        ));
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn get_or_extract(
        &self,
        path: &Path,
        extractor: &FeatureExtractor,
        resolution: u32,
        mirrored: bool,
        gray: impl FnOnce() -> Result<GrayImage, AttackError>,
    ) -> Result<FeatureSet, AttackError> {
        let file = self.dir.as_ref().map(|dir| {
            dir.join(format!(
                "{}.npz",
                self.key(path, extractor, resolution, mirrored)
            ))
        });
        if let Some(Ok(f)) = file.as_deref().map(read_features) {
            return Ok(f);
        }
        let features = extractor
            .extract(&gray()?)
            .map_err(|source| AttackError::Extract {
                path: path.to_path_buf(),
                source,
            })?;
        if let (Some(dir), Some(file)) = (&self.dir, &file) {
            std::fs::create_dir_all(dir).map_err(FileError::io("create", dir))?;
            write_features(file, &features)?;
        }
        Ok(features)
    }
}

/// Loads `path`, resizes and centre-crops it to the threat model's feature resolution (mirrored
/// when asked) and extracts (or reads cached) features. Images smaller than the reconstruction
/// resolution are refused.
///
/// The grey image features are extracted from follows the extractor's [`GrayConversion`]: for
/// `cvtcolor` and `pil`, the resized RGB image converted; for `imread-grayscale`, the file read
/// as grey by OpenCV (`IMREAD_GRAYSCALE`, as hloc reads images), replicated into RGB, resized,
/// cropped (and mirrored) exactly as the RGB image is, and one channel taken: what resizing an
/// `IMREAD_GRAYSCALE` image gives, pixel for pixel the same geometry as the attacker's target.
pub fn prepare(
    path: &Path,
    name: &str,
    threat: &ThreatModel,
    extractor: &FeatureExtractor,
    cache: &FeatureCache,
    mirrored: bool,
) -> Result<Prepared, AttackError> {
    let (rgb, geometry) = load_for(path, threat)?;
    let (width, height) = rgb.dimensions();
    let f = threat.feature_resolution;
    let mut image = geometry.apply(&rgb);
    if mirrored {
        image::imageops::flip_horizontal_in_place(&mut image);
    }
    let conversion = extractor.config().gray;
    let gray = || match conversion {
        GrayConversion::ImreadGrayscale => {
            let file_gray = conversion.load(path)?;
            if file_gray.dimensions() != (width, height) {
                return Err(AttackError::Mismatch {
                    path: path.to_path_buf(),
                    problem: format!(
                        "read as grey it is {}×{}, as RGB {width}×{height}",
                        file_gray.width(),
                        file_gray.height()
                    ),
                });
            }
            Ok(gray_through(&geometry, mirrored, &file_gray))
        }
        other => Ok(other.from_rgb(&image)),
    };
    let features = cache.get_or_extract(path, extractor, f, mirrored, gray)?;
    Ok(Prepared {
        name: name.to_string(),
        image,
        features,
    })
}

/// The image at `path` and the geometry taking it to the threat model's feature resolution
/// (resize to cover, centre crop); images smaller than the reconstruction are refused.
fn load_for(path: &Path, threat: &ThreatModel) -> Result<(RgbImage, ResizeCrop), AttackError> {
    let rgb = load_rgb(path)?;
    let (width, height) = rgb.dimensions();
    if width.min(height) < threat.resolution {
        return Err(AttackError::ImageTooSmall {
            path: path.to_path_buf(),
            width,
            height,
            resolution: threat.resolution,
        });
    }
    let f = threat.feature_resolution;
    Ok((rgb, ResizeCrop::cover((height, width), (f, f))))
}

/// Loads `path` and brings it and `features` — another pipeline's, read from a store, made on
/// the whole image — to the threat model's feature resolution as [`prepare`] brings an image
/// (resize to cover, centre crop; keypoints outside the crop dropped). Never mirrored: an
/// unknown descriptor of a mirrored image cannot be computed from the image's.
pub fn prepare_stored(
    path: &Path,
    name: &str,
    threat: &ThreatModel,
    features: FeatureSet,
) -> Result<Prepared, AttackError> {
    let (rgb, geometry) = load_for(path, threat)?;
    let (width, height) = rgb.dimensions();
    if features.image_size != (height, width) {
        let (fh, fw) = features.image_size;
        return Err(AttackError::Mismatch {
            path: path.to_path_buf(),
            problem: format!(
                "its stored features are of a {fw}×{fh} image, the image is {width}×{height}"
            ),
        });
    }
    Ok(Prepared {
        name: name.to_string(),
        image: geometry.apply(&rgb),
        features: features.transformed(&geometry),
    })
}

/// `gray` seen through `geometry` (and mirrored) exactly as an RGB image is: replicated into
/// RGB, resized and cropped, one channel kept.
fn gray_through(geometry: &ResizeCrop, mirrored: bool, gray: &GrayImage) -> GrayImage {
    let (w, h) = gray.dimensions();
    let rgb = RgbImage::from_raw(w, h, gray.as_raw().iter().flat_map(|&v| [v; 3]).collect())
        .expect("buffer size matches dimensions");
    let mut out = geometry.apply(&rgb);
    if mirrored {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    let (w, h) = out.dimensions();
    GrayImage::from_raw(w, h, out.as_raw().iter().step_by(3).copied().collect())
        .expect("buffer size matches dimensions")
}

impl Prepared {
    /// The target image and features seen through `t` (from F×F to the reconstruction size).
    pub fn view(&self, t: &ResizeCrop) -> (RgbImage, FeatureSet) {
        (t.apply(&self.image), self.features.transformed(t))
    }
}

/// The evaluation view: the whole F×F image resized to R×R.
pub fn centre_view(threat: &ThreatModel) -> ResizeCrop {
    let (f, r) = (threat.feature_resolution, threat.resolution);
    ResizeCrop::cover((f, f), (r, r))
}

/// A random training view: resize F×F to a random side in [R, 1.25·R] (capped at F), then crop
/// R×R at a random place. Victims are seen whole ([`centre_view`]), so training views stay close
/// to that scale.
pub fn random_view(threat: &ThreatModel, rng: &mut ChaCha8Rng) -> ResizeCrop {
    let (f, r) = (threat.feature_resolution, threat.resolution);
    let side = rng.random_range(r..=(r + r / 4).min(f).max(r));

    let offset = (
        rng.random_range(0..=side - r),
        rng.random_range(0..=side - r),
    );
    ResizeCrop {
        src: (f, f),
        resized: (side, side),
        offset,
        out: (r, r),
    }
}

/// A batch ready for the network: the revealed keypoints as sparse pixels and the RGB targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Images in the batch.
    pub size: usize,
    /// Height of the reconstruction (pixels).
    pub height: usize,
    /// Width of the reconstruction (pixels).
    pub width: usize,
    /// Channels of each revealed keypoint's input vector.
    pub channels: usize,
    /// K×C values of the occupied pixels, row-major.
    pub values: Vec<f32>,
    /// K flattened pixel indices `b·H·W + y·W + x`.
    pub pixel_index: Vec<i64>,
    /// B×3×H×W targets in [0, 1], row-major.
    pub targets: Vec<f32>,
    /// Revealed keypoints per image.
    pub revealed: Vec<usize>,
    /// For each occupied pixel (in `pixel_index` order), the keypoint it holds: its index in
    /// its item's feature set.
    pub sources: Vec<usize>,
}

/// What the adversary receives of each (target, features) pair: features revealed as `threat`
/// says, with a share drawn from `share`.
pub fn reveal_items(
    items: Vec<(RgbImage, FeatureSet)>,
    threat: &ThreatModel,
    share: Share,
    rng: &mut ChaCha8Rng,
) -> Vec<(RgbImage, FeatureSet)> {
    items
        .into_iter()
        .map(|(target, f)| (target, threat.reveal(&f, share, rng)))
        .collect()
}

/// Builds a batch from (target, revealed features at the target's size) pairs by rasterising
/// the features with `map`.
pub fn make_batch(items: &[(RgbImage, FeatureSet)], map: &SparseMapConfig) -> Batch {
    let (w, h) = items[0].0.dimensions();
    let hw = (h * w) as usize;
    let channels = map.channels(items[0].1.descriptors.dimension());
    let mut batch = Batch {
        size: items.len(),
        height: h as usize,
        width: w as usize,
        channels,
        values: Vec::new(),
        pixel_index: Vec::new(),
        targets: Vec::with_capacity(items.len() * 3 * hw),
        revealed: Vec::new(),
        sources: Vec::new(),
    };

    for (b, (target, features)) in items.iter().enumerate() {
        assert_eq!(
            target.dimensions(),
            (w, h),
            "all targets of a batch have one size"
        );
        let sparse = rasterize_sparse(features, map);
        batch.revealed.push(features.len());
        batch
            .pixel_index
            .extend(sparse.pixels.iter().map(|&p| (b * hw + p) as i64));
        batch.values.extend(sparse.values.iter());
        batch.sources.extend(&sparse.keypoints);

        for c in 0..3 {
            batch
                .targets
                .extend(target.pixels().map(|p| p[c] as f32 / 255.0));
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_datasets::schedule::rng;

    fn threat() -> ThreatModel {
        let mut t = ThreatModel::preset("desc+pos", "sift").unwrap();
        t.resolution = 64;
        t.feature_resolution = 96;
        t
    }

    #[test]
    fn prepare_caches_features_and_refuses_small_images() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        featleak_datasets::synthetic::scene(160, 120, 3)
            .save(&img)
            .unwrap();
        let t = threat();
        let extractor = t.extractor.build().unwrap();
        let cache = FeatureCache::new(dir.path().join("cache"));
        let p = prepare(&img, "a", &t, &extractor, &cache, false).unwrap();
        assert_eq!(p.image.dimensions(), (96, 96));
        assert_eq!(p.features.image_size, (96, 96));
        assert!(p.features.len() > 10);
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            1
        );
        let again = prepare(&img, "a", &t, &extractor, &cache, false).unwrap();
        assert_eq!(again.features, p.features, "read back from the cache");
        let mirrored = prepare(&img, "a", &t, &extractor, &cache, true).unwrap();
        assert_ne!(mirrored.features, p.features);
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            2
        );

        let small = dir.path().join("small.png");
        featleak_datasets::synthetic::scene(80, 40, 3)
            .save(&small)
            .unwrap();
        let e = prepare(&small, "s", &t, &extractor, &cache, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("small.png") && e.contains("80×40, smaller than the 64×64"),
            "{e}"
        );
    }

    #[test]
    fn imread_grayscale_extracts_from_the_file_read_as_grey_through_the_same_geometry() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        featleak_datasets::synthetic::scene(160, 120, 6)
            .save(&img)
            .unwrap();
        let mut t = threat();
        t.extractor.gray = GrayConversion::ImreadGrayscale;
        let extractor = t.extractor.build().unwrap();
        let cache = FeatureCache::none();
        let geometry = ResizeCrop::cover((120, 160), (96, 96));
        // OpenCV's grey read of the file, resized as a grey image, mirrored.
        let mut expected = geometry.apply(&GrayConversion::ImreadGrayscale.load(&img).unwrap());
        image::imageops::flip_horizontal_in_place(&mut expected);
        let file_gray = GrayConversion::ImreadGrayscale.load(&img).unwrap();
        assert_eq!(gray_through(&geometry, true, &file_gray), expected);

        let p = prepare(&img, "a", &t, &extractor, &cache, true).unwrap();
        assert_eq!(p.features, extractor.extract(&expected).unwrap());
        // The RGB target is the same as under cvtcolor; the features are not.
        let c = threat();
        let q = prepare(&img, "a", &c, &c.extractor.build().unwrap(), &cache, true).unwrap();
        assert_eq!(p.image, q.image);
        assert_ne!(p.features.keypoints, q.features.keypoints);
    }

    #[test]
    fn views_and_batches_are_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        featleak_datasets::synthetic::scene(160, 120, 4)
            .save(&img)
            .unwrap();
        let t = threat();
        let p = prepare(
            &img,
            "a",
            &t,
            &t.extractor.build().unwrap(),
            &FeatureCache::new(dir.path()),
            false,
        )
        .unwrap();
        let mut r = rng(5, 1);
        for _ in 0..5 {
            let v = random_view(&t, &mut r);
            assert!(v.resized.0 >= 64 && v.resized.0 <= 80 && v.offset.0 + 64 <= v.resized.0);
        }
        let (target, features) = p.view(&centre_view(&t));
        assert_eq!(target.dimensions(), (64, 64));
        let items = reveal_items(
            vec![
                (target.clone(), features.clone()),
                (target, features.clone()),
            ],
            &t,
            Share::fixed(1.0),
            &mut r,
        );
        let batch = make_batch(&items, &t.sparse_map());
        assert_eq!(
            (batch.size, batch.height, batch.width, batch.channels),
            (2, 64, 64, 129)
        );
        assert_eq!(batch.targets.len(), 2 * 3 * 64 * 64);
        let k = batch.pixel_index.len();
        assert_eq!(batch.values.len(), k * 129);
        assert!(
            batch.pixel_index[k - 1] >= 64 * 64,
            "second image's pixels are offset"
        );
        assert_eq!(batch.revealed, vec![features.len(); 2]);
        // The presence channel (last) is 1 at every occupied pixel.
        assert!(batch.values.chunks(129).all(|row| row[128] == 1.0));
    }
}
