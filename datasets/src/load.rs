//! Decoding images with clear errors, and the colour conversions every extractor shares.

use image::{GrayImage, ImageBuffer, Luma, Rgb32FImage, RgbImage};
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
    /// The bytes are not an image the `image` crate can decode (corrupt or unsupported format).
    #[error("{path}: not a decodable image (corrupt or unsupported format): {message}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error message.
        message: String,
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
/// 16-bit images are reduced to 8 bits, alpha is dropped and grey is replicated. A truncated
/// JPEG is refused ([`ImageLoadError::Truncated`]).
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    let bytes = std::fs::read(path).map_err(|source| ImageLoadError::Io {
        path: path.into(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(ImageLoadError::Empty { path: path.into() });
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| ImageLoadError::Decode {
            path: path.into(),
            message: e.to_string(),
        })?;
    if reader.format() == Some(image::ImageFormat::Jpeg) && jpeg_is_truncated(&bytes) {
        return Err(ImageLoadError::Truncated { path: path.into() });
    }
    let img = reader.decode().map_err(|e| ImageLoadError::Decode {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(img.to_rgb8())
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
    let (w, h) = rgb.dimensions();
    let data = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            ((9798 * p[0] as u32 + 19235 * p[1] as u32 + 3735 * p[2] as u32 + 16384) >> 15) as u8
        })
        .collect();
    GrayImage::from_raw(w, h, data).expect("buffer size matches dimensions")
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

    #[test]
    fn gray_matches_opencv_fixed_point() {
        // Values from cv2.cvtColor(np.array([[...]], np.uint8), cv2.COLOR_RGB2GRAY), OpenCV 4.6;
        // the last three differ with the older 14-bit coefficients.
        let px = [
            [255, 0, 0],
            [0, 255, 0],
            [10, 200, 33],
            [228, 205, 35],
            [232, 240, 11],
            [167, 46, 233],
        ];
        let rgb = RgbImage::from_raw(6, 1, px.concat()).unwrap();
        assert_eq!(rgb_to_gray(&rgb).as_raw(), &[76, 150, 124, 193, 212, 103]);
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
