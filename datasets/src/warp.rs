//! Perspective warps, to make image pairs with a known homography from single images.

use image::{Rgb, RgbImage};

/// Row-major 3×3 matrix.
pub type Mat3 = [[f64; 3]; 3];

/// Inverse of a 3×3 matrix; `None` when it is singular.
pub fn invert(m: &Mat3) -> Option<Mat3> {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let det = m[0][0] * c(1, 2, 1, 2) - m[0][1] * c(1, 2, 0, 2) + m[0][2] * c(1, 2, 0, 1);
    if det.abs() < 1e-12 {
        return None;
    }
    let adj = [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ];
    Some(adj.map(|row| row.map(|v| v / det)))
}

/// Warps `img` by `h` (source pixel → output pixel, pixel centres at integer coordinates) into
/// an image of `width`×`height`, sampling bilinearly; pixels that come from outside are black.
pub fn warp_perspective(img: &RgbImage, h: &Mat3, width: u32, height: u32) -> Option<RgbImage> {
    let inv = invert(h)?;
    let (sw, sh) = (img.width() as i64, img.height() as i64);
    Some(RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as f64, y as f64);
        let w = inv[2][0] * x + inv[2][1] * y + inv[2][2];
        let sx = (inv[0][0] * x + inv[0][1] * y + inv[0][2]) / w;
        let sy = (inv[1][0] * x + inv[1][1] * y + inv[1][2]) / w;
        if !(sx >= 0.0 && sy >= 0.0 && sx <= (sw - 1) as f64 && sy <= (sh - 1) as f64) {
            return Rgb([0, 0, 0]);
        }
        let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
        let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
        let px = |xx: i64, yy: i64| {
            img.get_pixel(xx.min(sw - 1) as u32, yy.min(sh - 1) as u32)
                .0
        };
        let (a, b, c, d) = (
            px(x0, y0),
            px(x0 + 1, y0),
            px(x0, y0 + 1),
            px(x0 + 1, y0 + 1),
        );
        Rgb(std::array::from_fn(|k| {
            let top = a[k] as f64 * (1.0 - fx) + b[k] as f64 * fx;
            let bottom = c[k] as f64 * (1.0 - fx) + d[k] as f64 * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_and_translation_warp() {
        let h = [[1.2, 0.1, 3.0], [-0.2, 0.9, 1.0], [1e-3, 0.0, 1.0]];
        let inv = invert(&h).unwrap();
        for (r, row) in h.iter().enumerate() {
            for c in 0..3 {
                let v: f64 = row
                    .iter()
                    .zip(&inv)
                    .map(|(a, inv_row)| a * inv_row[c])
                    .sum();
                assert!((v - (r == c) as u8 as f64).abs() < 1e-12);
            }
        }

        assert!(invert(&[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]).is_none());
        let img = RgbImage::from_fn(8, 6, |x, y| Rgb([x as u8 * 10, y as u8 * 10, 7]));
        let shifted = warp_perspective(
            &img,
            &[[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]],
            8,
            6,
        )
        .unwrap();
        assert_eq!(shifted.get_pixel(5, 4).0, img.get_pixel(3, 3).0);
        assert_eq!(shifted.get_pixel(0, 0).0, [0, 0, 0]);
    }
}
