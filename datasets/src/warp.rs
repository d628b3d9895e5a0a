//! Perspective warps, to make image pairs with a known homography from single images, and
//! sequence folders in the HPatches layout built from them.

use image::{Rgb, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

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

/// The homography mapping the four points `from` onto `to` (direct linear transform with
/// `h33 = 1`); `None` for degenerate points.
pub fn homography_from_points(from: &[(f64, f64); 4], to: &[(f64, f64); 4]) -> Option<Mat3> {
    // Rows: x' (h31 x + h32 y + 1) = h11 x + h12 y + h13, and the same for y'.
    let mut a = [[0.0f64; 9]; 8];
    for (i, (&(x, y), &(u, v))) in from.iter().zip(to).enumerate() {
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gauss-Jordan elimination with partial pivoting on the 8×9 augmented matrix.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= p);
        for r in 0..8 {
            if r != col {
                let f = a[r][col];
                let pivot_row = a[col];
                a[r].iter_mut()
                    .zip(pivot_row)
                    .for_each(|(v, pv)| *v -= f * pv);
            }
        }
    }
    let h: Vec<f64> = a.iter().map(|row| row[8]).collect();
    Some([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]])
}

/// A random homography of a `width`×`height` image: each corner moves by up to `strength` of
/// the shorter side in x and y (a random viewpoint change that keeps most of the image).
pub fn random_homography(width: u32, height: u32, strength: f64, rng: &mut ChaCha8Rng) -> Mat3 {
    let (w, h) = ((width - 1) as f64, (height - 1) as f64);
    let m = strength * w.min(h);
    let corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    loop {
        let moved =
            corners.map(|(x, y)| (x + rng.random_range(-m..=m), y + rng.random_range(-m..=m)));
        if let Some(hm) = homography_from_points(&corners, &moved) {
            return hm;
        }
    }
}

/// Writes an HPatches-style sequence into `dir`: `1.png` (= `image`), and for each homography
/// `H` number `k = 2, 3, …`, `k.png` (the image warped by `H`, same size) and `H_1_k` (the
/// matrix, row by row).
pub fn write_sequence(dir: &Path, image: &RgbImage, homographies: &[Mat3]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let save = |name: &str, img: &RgbImage| {
        crate::atomic::write_atomic(&dir.join(name), |f| {
            img.write_to(f, image::ImageFormat::Png)
                .map_err(std::io::Error::other)
        })
    };
    save("1.png", image)?;
    for (i, hm) in homographies.iter().enumerate() {
        let k = i + 2;
        let warped = warp_perspective(image, hm, image.width(), image.height())
            .ok_or_else(|| std::io::Error::other(format!("homography {k} is singular")))?;
        save(&format!("{k}.png"), &warped)?;
        let text: String = hm
            .iter()
            .map(|row| format!("{:.12e} {:.12e} {:.12e}\n", row[0], row[1], row[2]))
            .collect();
        crate::atomic::write_bytes_atomic(&dir.join(format!("H_1_{k}")), text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn four_point_homography_and_sequences() {
        let from = [(0.0, 0.0), (99.0, 0.0), (99.0, 79.0), (0.0, 79.0)];
        let to = [(3.0, 2.0), (95.0, -4.0), (101.0, 83.0), (-2.0, 75.0)];
        let h = homography_from_points(&from, &to).unwrap();
        for (&(x, y), &(u, v)) in from.iter().zip(&to) {
            let w = h[2][0] * x + h[2][1] * y + h[2][2];
            assert!(((h[0][0] * x + h[0][1] * y + h[0][2]) / w - u).abs() < 1e-9);
            assert!(((h[1][0] * x + h[1][1] * y + h[1][2]) / w - v).abs() < 1e-9);
        }
        let line = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert!(homography_from_points(&line, &to).is_none());

        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_fn(40, 30, |x, y| Rgb([x as u8 * 6, y as u8 * 8, 50]));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let hs = [random_homography(40, 30, 0.1, &mut rng)];
        write_sequence(dir.path(), &img, &hs).unwrap();
        let pairs = crate::find_pairs(dir.path()).unwrap().pairs;
        assert_eq!(pairs.len(), 1);
        for (got_row, want_row) in pairs[0].homography.iter().zip(&hs[0]) {
            for (got, want) in got_row.iter().zip(want_row) {
                assert!((got - want).abs() < 1e-9 * want.abs().max(1.0));
            }
        }
    }

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
