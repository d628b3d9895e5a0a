//! Decoding images with clear errors, and the colour conversions every extractor shares.
//!
//! JPEG goes through OpenCV's `imdecode` (libjpeg-turbo, as in OpenCV-based pipelines): the `image`
//! crate's IDCT differs from libjpeg's by ±1 on many pixels, which moves keypoints and flips
//! descriptor bits. Other formats are decoded by the `image` crate (lossless, so identical).

use image::{GrayImage, ImageBuffer, Luma, Rgb32FImage, RgbImage};
use opencv::core::{CV_8UC1, CV_8UC3, Mat};
use opencv::imgcodecs::{IMREAD_COLOR, IMREAD_GRAYSCALE, imdecode};
use opencv::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why an image could not be loaded; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    /// The file could not be read (missing, unreadable, …).
    #[error("{path}: cannot read file: {source}")]
    Io {
        /// The image file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty (0 bytes).
    #[error("{path}: empty file (0 bytes)")]
    Empty {
        /// The image file.
        path: PathBuf,
    },
    /// The bytes are not an image the decoder (OpenCV for JPEG, the `image` crate otherwise) can
    /// decode (corrupt or unsupported format).
    #[error("{path}: not a decodable image (corrupt or unsupported format): {message}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error message.
        message: String,
    },
    /// A header claiming more pixels than its file could hold (more than [`MAX_EXPANSION`]
    /// decoded bytes per byte of file, plus [`EXPANSION_SLACK`]): refused before decoding, as a
    /// crafted 4 kB JPEG claiming 30000×30000 pixels would take gigabytes.
    #[error(
        "{path}: its header claims {width}×{height} pixels from a file of {bytes} bytes, more \
         than any image compresses (refused before decoding)"
    )]
    Oversized {
        /// The image file.
        path: PathBuf,
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
        /// The file's size.
        bytes: usize,
    },
    /// A JPEG whose data stops before its end-of-image marker: decoders fill the missing part
    /// with grey, which would silently enter features and scores.
    #[error("{path}: truncated JPEG (the data ends before the end-of-image marker)")]
    Truncated {
        /// The image file.
        path: PathBuf,
    },
}

/// Decodes `path` (format guessed from its content, not its name) into 8-bit RGB.
/// JPEG is decoded by OpenCV (`imdecode(..., IMREAD_COLOR)`, so pixels equal OpenCV's, its EXIF
/// orientation applied as OpenCV does), other formats by the `image` crate. 16-bit images are
/// reduced to 8 bits, alpha is dropped and grey is replicated. A truncated JPEG is refused
/// ([`ImageLoadError::Truncated`]).
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    let bytes = read_image_bytes(path)?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| ImageLoadError::Decode {
            path: path.into(),
            message: e.to_string(),
        })?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        refuse_truncated_jpeg(path, &bytes)?;
        let bgr = opencv_decode(path, &bytes, IMREAD_COLOR)?;
        let (width, height, mut data) = mat_pixels(path, &bgr, CV_8UC3)?;
        data.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
        return Ok(RgbImage::from_raw(width, height, data).expect("buffer size matches dimensions"));
    }
    let img = reader.decode().map_err(|e| ImageLoadError::Decode {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// Most decoded bytes (RGBA) an image may claim per byte of its file: a uniform JPEG or PNG
/// compresses a few hundred times, photos ten to twenty.
pub const MAX_EXPANSION: u64 = 1024;
/// Decoded bytes an image may claim whatever its file's size.
pub const EXPANSION_SLACK: u64 = 64 << 20;

/// The file's bytes; a missing, unreadable or empty file, or one whose header claims more pixels
/// than it could hold ([`ImageLoadError::Oversized`]), is an error naming it.
fn read_image_bytes(path: &Path) -> Result<Vec<u8>, ImageLoadError> {
    let bytes = std::fs::read(path).map_err(|source| ImageLoadError::Io {
        path: path.into(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(ImageLoadError::Empty { path: path.into() });
    }
    // The header alone; formats the `image` crate cannot read are left to the decoder.
    let claimed = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    if let Some((width, height)) = claimed {
        let decoded = u64::from(width) * u64::from(height) * 4;
        if decoded > MAX_EXPANSION * bytes.len() as u64 + EXPANSION_SLACK {
            return Err(ImageLoadError::Oversized {
                path: path.into(),
                width,
                height,
                bytes: bytes.len(),
            });
        }
    }
    Ok(bytes)
}

fn refuse_truncated_jpeg(path: &Path, bytes: &[u8]) -> Result<(), ImageLoadError> {
    if jpeg_is_truncated(bytes) {
        return Err(ImageLoadError::Truncated { path: path.into() });
    }
    Ok(())
}

/// OpenCV's `imdecode(bytes, flags)`; an exception or an empty result (OpenCV's way of saying it
/// cannot decode the bytes) is [`ImageLoadError::Decode`] naming the file.
fn opencv_decode(path: &Path, bytes: &[u8], flags: i32) -> Result<Mat, ImageLoadError> {
    let decode_error = |message: String| ImageLoadError::Decode {
        path: path.into(),
        message,
    };
    let buf = Mat::from_slice(bytes).map_err(|e| decode_error(format!("OpenCV: {e}")))?;
    let mat = imdecode(&buf, flags).map_err(|e| decode_error(format!("OpenCV imdecode: {e}")))?;
    if mat.empty() {
        return Err(decode_error(
            "OpenCV's imdecode could not decode it (corrupt data or a format OpenCV does not read)"
                .into(),
        ));
    }
    Ok(mat)
}

/// Width, height and the row-major pixels of an 8-bit matrix of type `typ`.
fn mat_pixels(path: &Path, mat: &Mat, typ: i32) -> Result<(u32, u32, Vec<u8>), ImageLoadError> {
    let decode_error = |message: String| ImageLoadError::Decode {
        path: path.into(),
        message,
    };
    if mat.typ() != typ {
        return Err(decode_error(format!(
            "OpenCV decoded it to matrix type {}, expected {typ}",
            mat.typ()
        )));
    }
    let (width, height) = (mat.cols() as u32, mat.rows() as u32);
    let data = if mat.is_continuous() {
        mat.data_bytes()
            .map_err(|e| decode_error(format!("OpenCV: {e}")))?
            .to_vec()
    } else {
        mat.try_clone()
            .and_then(|m| m.data_bytes().map(<[u8]>::to_vec))
            .map_err(|e| decode_error(format!("OpenCV: {e}")))?
    };
    Ok((width, height, data))
}

/// Whether a JPEG has image data (a start-of-scan, `FF DA`) that its end-of-image marker
/// (`FF D9`) does not follow. Inside entropy-coded data a `FF` byte is always followed by `00` or
/// a restart marker, so an `FF D9` after the last start-of-scan can only be the real end; one
/// inside an embedded thumbnail comes before the main image's scans. Bytes without any scan are
/// left to the decoder to refuse.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| !bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// RGB to grey exactly as OpenCV 4's `cvtColor(..., COLOR_RGB2GRAY)` on 8-bit data:
/// `(9798 R + 19235 G + 3735 B + 16384) >> 15` (BT.601 weights in 15-bit fixed point).
pub fn rgb_to_gray(rgb: &RgbImage) -> GrayImage {
    map_rgb(rgb, |p| {
        ((9798 * p[0] as u32 + 19235 * p[1] as u32 + 3735 * p[2] as u32 + 16384) >> 15) as u8
    })
}

/// RGB to grey exactly as Pillow's `Image.convert('L')` (`libImaging/Convert.c`, `L24`):
/// `(19595 R + 38470 G + 7471 B + 0x8000) >> 16` (BT.601 weights in 16-bit fixed point).
pub fn rgb_to_gray_pil(rgb: &RgbImage) -> GrayImage {
    map_rgb(rgb, |p| {
        ((19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 0x8000) >> 16) as u8
    })
}

/// RGB to grey exactly as libpng's `png_set_rgb_to_gray(png, 1, 0.299, 0.587)`, which OpenCV's
/// PNG decoder asks for under `IMREAD_GRAYSCALE`: `(9797 R + 19234 G + 3737 B) >> 15`, truncated
/// (8-bit data, no gamma). It differs from [`rgb_to_gray`] by 1 on about half the pixels.
pub fn rgb_to_gray_libpng(rgb: &RgbImage) -> GrayImage {
    map_rgb(rgb, |p| {
        ((9797 * p[0] as u32 + 19234 * p[1] as u32 + 3737 * p[2] as u32) >> 15) as u8
    })
}

fn map_rgb(rgb: &RgbImage, f: impl Fn(&[u8]) -> u8) -> GrayImage {
    let (w, h) = rgb.dimensions();
    let data = rgb.as_raw().chunks_exact(3).map(f).collect();
    GrayImage::from_raw(w, h, data).expect("buffer size matches dimensions")
}

/// How an image becomes the grey image extractors work on; recorded in the extractor's
/// configuration (`cvtcolor`, `imread-grayscale`, `pil`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrayConversion {
    /// Decode to RGB ([`load_rgb`]), then OpenCV's `cvtColor(RGB2GRAY)` ([`rgb_to_gray`]).
    #[default]
    #[serde(rename = "cvtcolor")]
    CvtColor,
    /// OpenCV's `imdecode(bytes, IMREAD_GRAYSCALE)` on the file, as hloc reads images: for JPEG
    /// libjpeg's own grey output (the luma plane, never upsampled chroma), for PNG libpng's
    /// conversion ([`rgb_to_gray_libpng`]), for other formats OpenCV's decoder's.
    #[serde(rename = "imread-grayscale")]
    ImreadGrayscale,
    /// Decode to RGB ([`load_rgb`]), then Pillow's `convert('L')` ([`rgb_to_gray_pil`]). Equal to
    /// Pillow's `Image.open(file).convert('L')` except on EXIF-rotated JPEGs, which Pillow leaves
    /// unrotated.
    #[serde(rename = "pil")]
    Pil,
}

impl GrayConversion {
    /// Every conversion, in [`Self::NAMES`] order.
    pub const ALL: [Self; 3] = [Self::CvtColor, Self::ImreadGrayscale, Self::Pil];
    /// Names accepted by [`Self::parse`] (as written in configurations and on the command line).
    pub const NAMES: [&'static str; 3] = ["cvtcolor", "imread-grayscale", "pil"];

    /// Its name in configurations and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::CvtColor => Self::NAMES[0],
            Self::ImreadGrayscale => Self::NAMES[1],
            Self::Pil => Self::NAMES[2],
        }
    }

    /// The conversion called `name`; an unknown name is an error listing the known ones.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|g| g.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown grey conversion '{name}' (known: {})",
                    Self::NAMES.join(", ")
                )
            })
    }

    /// The grey image of the file at `path` (errors name it; a truncated JPEG is refused).
    pub fn load(self, path: &Path) -> Result<GrayImage, ImageLoadError> {
        match self {
            Self::CvtColor => Ok(rgb_to_gray(&load_rgb(path)?)),
            Self::Pil => Ok(rgb_to_gray_pil(&load_rgb(path)?)),
            Self::ImreadGrayscale => load_gray_opencv(path),
        }
    }

    /// The grey image of pixels already decoded. With no file to decode, `ImreadGrayscale` gives
    /// what OpenCV's `IMREAD_GRAYSCALE` reads from an 8-bit RGB PNG of these pixels
    /// ([`rgb_to_gray_libpng`]); on a JPEG's pixels that is close to, not equal to, its luma.
    pub fn from_rgb(self, rgb: &RgbImage) -> GrayImage {
        match self {
            Self::CvtColor => rgb_to_gray(rgb),
            Self::Pil => rgb_to_gray_pil(rgb),
            Self::ImreadGrayscale => rgb_to_gray_libpng(rgb),
        }
    }
}

impl std::fmt::Display for GrayConversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GrayConversion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `imdecode(bytes, IMREAD_GRAYSCALE)` on the file at `path`, truncated JPEGs refused.
fn load_gray_opencv(path: &Path) -> Result<GrayImage, ImageLoadError> {
    let bytes = read_image_bytes(path)?;
    if image::guess_format(&bytes).ok() == Some(image::ImageFormat::Jpeg) {
        refuse_truncated_jpeg(path, &bytes)?;
    }
    let mat = opencv_decode(path, &bytes, IMREAD_GRAYSCALE)?;
    let (width, height, data) = mat_pixels(path, &mat, CV_8UC1)?;
    Ok(GrayImage::from_raw(width, height, data).expect("buffer size matches dimensions"))
}

/// 8-bit grey to f32 grey in [0, 1].
pub fn to_f32_gray(gray: &GrayImage) -> ImageBuffer<Luma<f32>, Vec<f32>> {
    let (w, h) = gray.dimensions();
    ImageBuffer::from_raw(
        w,
        h,
        gray.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .expect("buffer size matches dimensions")
}

/// 8-bit RGB to f32 RGB in [0, 1].
pub fn to_f32_rgb(rgb: &RgbImage) -> Rgb32FImage {
    let (w, h) = rgb.dimensions();
    Rgb32FImage::from_raw(
        w,
        h,
        rgb.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .expect("buffer size matches dimensions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_claiming_more_pixels_than_the_file_holds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("odd_420.jpg");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/decode/odd_420.jpg"
            ),
            &good,
        )
        .unwrap();
        let mut bytes = std::fs::read(&good).unwrap();
        // The baseline frame header (FF C0): length (2), precision (1), height (2), width (2).
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
        let big = dir.path().join("big.jpg");
        std::fs::write(&big, &bytes).unwrap();
        for gray in GrayConversion::ALL {
            let e = gray.load(&big).unwrap_err().to_string();
            assert!(
                e.contains("big.jpg") && e.contains("claims 30000×30000 pixels"),
                "{gray}: {e}"
            );
        }
        assert!(load_rgb(&good).is_ok());
    }

    #[test]
    fn truncated_jpegs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let scene = crate::synthetic::scene(64, 48, 1);
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&scene)
            .unwrap();
        let whole = dir.path().join("whole.jpg");
        std::fs::write(&whole, &bytes).unwrap();
        assert_eq!(load_rgb(&whole).unwrap().dimensions(), (64, 48));
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = load_rgb(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.jpg") && e.contains("truncated JPEG"), "{e}");
    }

    /// Pixels whose grey values the conversions' references give below.
    const PIXELS: [[u8; 3]; 6] = [
        [255, 0, 0],
        [0, 255, 0],
        [10, 200, 33],
        [228, 205, 35],
        [232, 240, 11],
        [167, 46, 233],
    ];

    #[test]
    fn gray_matches_opencv_fixed_point() {
        // Values from cv2.cvtColor(np.array([[...]], np.uint8), cv2.COLOR_RGB2GRAY), OpenCV 4.6;
        // the last three differ with the older 14-bit coefficients.
        let rgb = RgbImage::from_raw(6, 1, PIXELS.concat()).unwrap();
        assert_eq!(rgb_to_gray(&rgb).as_raw(), &[76, 150, 124, 193, 212, 103]);
    }

    #[test]
    fn pil_and_libpng_grey_match_their_references() {
        // Pillow 13: Image.fromarray(px).convert('L'); libpng: cv2.imdecode(cv2.imencode('.png',
        // BGR), IMREAD_GRAYSCALE) with opencv-python 4.6 (the pixels of the test above).
        let rgb = RgbImage::from_raw(6, 1, PIXELS.concat()).unwrap();
        assert_eq!(
            rgb_to_gray_pil(&rgb).as_raw(),
            &[76, 150, 124, 192, 212, 103]
        );
        assert_eq!(
            rgb_to_gray_libpng(&rgb).as_raw(),
            &[76, 149, 124, 192, 211, 103]
        );
        // Grey pixels stay as they are under every conversion.
        let grey = RgbImage::from_fn(256, 1, |x, _| image::Rgb([x as u8; 3]));
        for g in GrayConversion::ALL {
            let out = g.from_rgb(&grey);
            assert!(out.pixels().zip(0..).all(|(p, x)| p[0] == x as u8), "{g}");
        }
    }

    #[test]
    fn grey_conversions_have_stable_names() {
        for (g, name) in GrayConversion::ALL.into_iter().zip(GrayConversion::NAMES) {
            assert_eq!(g.name(), name);
            assert_eq!(GrayConversion::parse(name), Ok(g));
            assert_eq!(serde_json::to_value(g).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<GrayConversion>(name.into()).unwrap(),
                g
            );
        }
        assert_eq!(GrayConversion::default(), GrayConversion::CvtColor);
        let e = GrayConversion::parse("luma").unwrap_err();
        assert!(
            e.contains("'luma'") && e.contains("imread-grayscale"),
            "{e}"
        );
    }

    #[test]
    fn opencv_grey_reads_refuse_bad_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let scene = crate::synthetic::scene(64, 48, 2);
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&scene)
            .unwrap();
        let whole = dir.path().join("whole.jpg");
        std::fs::write(&whole, &bytes).unwrap();
        let g = GrayConversion::ImreadGrayscale;
        assert_eq!(g.load(&whole).unwrap().dimensions(), (64, 48));
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let corrupt = dir.path().join("corrupt.png");
        std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n not really a png").unwrap();
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        for (file, problem) in [
            ("cut.jpg", "truncated JPEG"),
            ("corrupt.png", "not a decodable image"),
            ("empty.jpg", "0 bytes"),
            ("missing.jpg", "cannot read"),
        ] {
            let e = g.load(&dir.path().join(file)).unwrap_err().to_string();
            assert!(e.contains(file) && e.contains(problem), "{e}");
        }
    }

    #[test]
    fn f32_conversions_scale_to_unit_range() {
        let rgb = RgbImage::from_raw(2, 1, vec![0, 51, 255, 255, 255, 255]).unwrap();
        assert_eq!(to_f32_rgb(&rgb).as_raw(), &[0.0, 0.2, 1.0, 1.0, 1.0, 1.0]);
        // grey (0, 51, 255) = (19235·51 + 3735·255 + 16384) >> 15 = 59
        assert_eq!(
            to_f32_gray(&rgb_to_gray(&rgb)).as_raw(),
            &[59.0 / 255.0, 1.0]
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        let e = load_rgb(&empty).unwrap_err().to_string();
        assert!(e.contains("empty.png") && e.contains("0 bytes"), "{e}");

        let corrupt = dir.path().join("corrupt.jpg");
        std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 this is not really a jpeg").unwrap();
        let e = load_rgb(&corrupt).unwrap_err().to_string();
        assert!(
            e.contains("corrupt.jpg") && e.contains("not a decodable image"),
            "{e}"
        );

        let e = load_rgb(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.png") && e.contains("cannot read"),
            "{e}"
        );
    }
}
