//! Resize + centre-crop geometry, shared by images and the features extracted from them so
//! that both stay aligned.
//!
//! Convention (OpenCV's): pixel centres sit at integer coordinates, so a point `x` in the source
//! maps to `(x + 0.5) * sx - 0.5 - left` in the output, where `sx` is the actual resize factor.

use image::imageops::FilterType;
use image::{ImageBuffer, Pixel};
use serde::{Deserialize, Serialize};

/// Resize an image of `src` size so it covers `out` (aspect ratio kept), then crop the centre.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResizeCrop {
    /// Source size (height, width).
    pub src: (u32, u32),
    /// Size after resizing, before cropping (height, width).
    pub resized: (u32, u32),
    /// Top-left corner of the crop in the resized image (top, left).
    pub offset: (u32, u32),
    /// Output size (height, width).
    pub out: (u32, u32),
}

impl ResizeCrop {
    /// The smallest aspect-preserving resize of `src` that covers `out`, then a centre crop.
    pub fn cover(src: (u32, u32), out: (u32, u32)) -> Self {
        let (sh, sw) = (src.0.max(1) as f64, src.1.max(1) as f64);
        let s = (out.0 as f64 / sh).max(out.1 as f64 / sw);
        let resized = (
            ((sh * s).round() as u32).max(out.0),
            ((sw * s).round() as u32).max(out.1),
        );
        let offset = ((resized.0 - out.0) / 2, (resized.1 - out.1) / 2);
        Self {
            src,
            resized,
            offset,
            out,
        }
    }

    /// Horizontal and vertical scale factors (resized / source).
    pub fn scale(&self) -> (f64, f64) {
        (
            self.resized.1 as f64 / self.src.1 as f64,
            self.resized.0 as f64 / self.src.0 as f64,
        )
    }

    /// Maps a source point (x, y) to output coordinates; `None` when it falls outside the output
    /// (a point is inside when it rounds to an output pixel).
    pub fn map_point(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (sx, sy) = self.scale();
        let nx = (x + 0.5) * sx - 0.5 - self.offset.1 as f64;
        let ny = (y + 0.5) * sy - 0.5 - self.offset.0 as f64;
        let inside = |v: f64, n: u32| v >= -0.5 && v < n as f64 - 0.5;
        (inside(nx, self.out.1) && inside(ny, self.out.0)).then_some((nx, ny))
    }

    /// Applies the resize (bilinear, antialiased when shrinking) and the crop to an image.
    pub fn apply<P>(
        &self,
        img: &ImageBuffer<P, Vec<P::Subpixel>>,
    ) -> ImageBuffer<P, Vec<P::Subpixel>>
    where
        P: Pixel + 'static,
        P::Subpixel: 'static,
    {
        assert_eq!(
            img.dimensions(),
            (self.src.1, self.src.0),
            "image size differs from ResizeCrop source"
        );
        let resized = if self.resized == self.src {
            img.clone()
        } else {
            image::imageops::resize(img, self.resized.1, self.resized.0, FilterType::Triangle)
        };
        image::imageops::crop_imm(
            &resized,
            self.offset.1,
            self.offset.0,
            self.out.1,
            self.out.0,
        )
        .to_image()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_keeps_aspect_and_centres() {
        let t = ResizeCrop::cover((321, 481), (128, 128));
        assert_eq!(t.resized, (128, 192));
        assert_eq!(t.offset, (0, 32));
        let (x, y) = t.map_point(240.0, 160.0).unwrap();
        // (240.5 · 192/481 − 0.5 − 32, 160.5 · 128/321 − 0.5) = (63.5, 63.5)
        assert!(
            (x - 63.5).abs() < 1e-9 && (y - 63.5).abs() < 1e-9,
            "{x} {y}"
        );
        assert!(t.map_point(0.0, 160.0).is_none());
    }

    #[test]
    fn identity_maps_points_to_themselves() {
        let t = ResizeCrop::cover((50, 60), (50, 60));
        assert_eq!(t.map_point(12.25, 3.5), Some((12.25, 3.5)));
        assert!(t.map_point(59.6, 0.0).is_none());
    }
}
