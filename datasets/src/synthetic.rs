//! Procedural, photo-like scenes so that every command can run on a machine with no data:
//! a sky gradient over a textured ground plane in perspective, buildings with window grids,
//! shaded spheres, triangles, soft value-noise texture and sensor noise. Seeded and deterministic.
//!
//! Colours follow natural statistics: each kind of surface draws from its own family of hues
//! (blue or overcast skies, grass, earth or pavement, concrete, brick or plaster walls, foliage
//! and stone), with a rare vivid object, so that, as in photos, colour goes with structure.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Color = [f32; 3];

/// A family of natural colours: ranges of hue (degrees), saturation and value.
struct Family {
    hue: (f32, f32),
    saturation: (f32, f32),
    value: (f32, f32),
}

const CLEAR_SKY: Family = Family {
    hue: (195.0, 225.0),
    saturation: (0.25, 0.6),
    value: (0.7, 0.95),
};
const OVERCAST_SKY: Family = Family {
    hue: (190.0, 230.0),
    saturation: (0.0, 0.1),
    value: (0.6, 0.85),
};
const HAZE: Family = Family {
    hue: (20.0, 60.0),
    saturation: (0.0, 0.2),
    value: (0.8, 1.0),
};
const GRASS: Family = Family {
    hue: (70.0, 120.0),
    saturation: (0.3, 0.65),
    value: (0.25, 0.55),
};
const EARTH: Family = Family {
    hue: (20.0, 40.0),
    saturation: (0.3, 0.55),
    value: (0.3, 0.6),
};
const PAVEMENT: Family = Family {
    hue: (20.0, 220.0),
    saturation: (0.0, 0.08),
    value: (0.35, 0.65),
};
const CONCRETE: Family = Family {
    hue: (0.0, 60.0),
    saturation: (0.0, 0.1),
    value: (0.5, 0.85),
};
const BRICK: Family = Family {
    hue: (5.0, 20.0),
    saturation: (0.45, 0.7),
    value: (0.35, 0.6),
};
const PLASTER: Family = Family {
    hue: (30.0, 50.0),
    saturation: (0.15, 0.35),
    value: (0.7, 0.9),
};
const GLASS: Family = Family {
    hue: (200.0, 230.0),
    saturation: (0.1, 0.4),
    value: (0.15, 0.4),
};
const FOLIAGE: Family = Family {
    hue: (75.0, 140.0),
    saturation: (0.35, 0.7),
    value: (0.2, 0.5),
};
const STONE: Family = Family {
    hue: (20.0, 50.0),
    saturation: (0.05, 0.25),
    value: (0.35, 0.7),
};
const TERRACOTTA: Family = Family {
    hue: (10.0, 25.0),
    saturation: (0.5, 0.7),
    value: (0.4, 0.65),
};
const SLATE: Family = Family {
    hue: (200.0, 230.0),
    saturation: (0.1, 0.25),
    value: (0.25, 0.45),
};
const VIVID: Family = Family {
    hue: (0.0, 360.0),
    saturation: (0.6, 0.9),
    value: (0.5, 0.9),
};

/// Share of objects (spheres, triangles) painted in a vivid colour rather than a natural one.
const VIVID_SHARE: f64 = 0.15;

/// A colour of one of `families`, chosen uniformly.
fn natural_color(rng: &mut ChaCha8Rng, families: &[&Family]) -> Color {
    let f = families[rng.random_range(0..families.len())];
    let mut draw = |(lo, hi): (f32, f32)| lo + (hi - lo) * rng.random::<f32>();
    hsv(draw(f.hue), draw(f.saturation), draw(f.value))
}

/// An object's colour: natural (`families`), or vivid for [`VIVID_SHARE`] of objects.
fn object_color(rng: &mut ChaCha8Rng, families: &[&Family]) -> Color {
    if rng.random_bool(VIVID_SHARE) {
        natural_color(rng, &[&VIVID])
    } else {
        natural_color(rng, families)
    }
}

/// RGB in [0, 1] of a hue in degrees, a saturation and a value.
fn hsv(hue: f32, saturation: f32, value: f32) -> Color {
    let k = |n: f32| (n + hue / 60.0).rem_euclid(6.0);
    let f = |n: f32| value - value * saturation * k(n).min(4.0 - k(n)).clamp(0.0, 1.0);
    [f(5.0), f(3.0), f(1.0)]
}

fn mix(a: Color, b: Color, t: f32) -> Color {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(c: Color, s: f32) -> Color {
    [c[0] * s, c[1] * s, c[2] * s]
}

/// Smooth 2-D value noise in [0, 1] on a lattice of `cell` pixels.
struct ValueNoise {
    grid: Vec<f32>,
    cols: usize,
    cell: f32,
}

impl ValueNoise {
    fn new(rng: &mut ChaCha8Rng, width: u32, height: u32, cell: f32) -> Self {
        let cols = (width as f32 / cell) as usize + 2;
        let rows = (height as f32 / cell) as usize + 2;
        let grid = (0..cols * rows).map(|_| rng.random()).collect();
        Self { grid, cols, cell }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let (gx, gy) = (x / self.cell, y / self.cell);
        let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let (tx, ty) = (smooth(gx.fract()), smooth(gy.fract()));
        let g = |i: usize, j: usize| self.grid[j * self.cols + i];
        let top = g(ix, iy) + (g(ix + 1, iy) - g(ix, iy)) * tx;
        let bottom = g(ix, iy + 1) + (g(ix + 1, iy + 1) - g(ix, iy + 1)) * tx;
        top + (bottom - top) * ty
    }
}

/// One procedural scene of `width`×`height` pixels; the same seed always gives the same image.
pub fn scene(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as f32, height as f32);
    let mut px = vec![[0f32; 3]; (width * height) as usize];

    // Sky and ground plane in perspective.
    let horizon = h * rng.random_range(0.25..0.6);
    let sky_top = natural_color(&mut rng, &[&CLEAR_SKY, &CLEAR_SKY, &OVERCAST_SKY]);
    let sky_bottom = mix(sky_top, natural_color(&mut rng, &[&HAZE]), 0.6);
    let ground_a = natural_color(&mut rng, &[&GRASS, &EARTH, &PAVEMENT]);
    let ground_b = scale(ground_a, rng.random_range(0.65..0.85));
    let tile = rng.random_range(0.5..2.0f32);
    let yaw = rng.random_range(-0.6..0.6f32);
    let cloud_cell = rng.random_range(12.0..40.0);
    let clouds = ValueNoise::new(&mut rng, width, height, cloud_cell);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let c = if fy < horizon {
                let t = fy / horizon.max(1.0);
                mix(
                    mix(sky_top, sky_bottom, t),
                    [1.0; 3],
                    0.35 * clouds.at(fx, fy),
                )
            } else {
                let depth = 40.0 / (fy - horizon + 1.0);
                let u = (fx - w / 2.0) / w * 8.0 * depth;
                let (ru, rv) = (
                    u * yaw.cos() - depth * yaw.sin(),
                    u * yaw.sin() + depth * yaw.cos(),
                );
                let checker = ((ru / tile).floor() + (rv / tile).floor()).rem_euclid(2.0);
                let fog = (depth / 10.0).min(1.0);
                mix(mix(ground_a, ground_b, checker), sky_bottom, fog * 0.7)
            };
            px[(y * width + x) as usize] = c;
        }
    }

    // Buildings: rectangles with window grids and a shaded side.
    for _ in 0..rng.random_range(1..4) {
        let bw = w * rng.random_range(0.1..0.3);
        let bh = h * rng.random_range(0.2..0.6);
        let x0 = rng.random_range(0.0..w - bw);
        let y1 = horizon + rng.random_range(0.0..(h - horizon) * 0.5);
        let y0 = (y1 - bh).max(0.0);
        let wall = natural_color(&mut rng, &[&CONCRETE, &BRICK, &PLASTER]);
        let glass = natural_color(&mut rng, &[&GLASS]);
        let (win_w, win_h) = (
            rng.random_range(4.0..12.0f32),
            rng.random_range(4.0..12.0f32),
        );
        for y in y0 as u32..(y1 as u32).min(height) {
            for x in x0 as u32..((x0 + bw) as u32).min(width) {
                let (lx, ly) = (x as f32 - x0, y as f32 - y0);
                let window =
                    (lx % (win_w * 2.0)) > win_w * 0.6 && (ly % (win_h * 2.0)) > win_h * 0.6;
                let shade = 0.6 + 0.4 * lx / bw;
                px[(y * width + x) as usize] = if window { glass } else { scale(wall, shade) };
            }
        }
    }

    // Shaded spheres and flat triangles.
    for _ in 0..rng.random_range(2..6) {
        let (cx, cy) = (rng.random_range(0.0..w), rng.random_range(0.0..h));
        let r = rng.random_range(0.04..0.18) * w.min(h) * 2.0;
        let base = object_color(&mut rng, &[&FOLIAGE, &STONE]);
        let light = (
            rng.random_range(-1.0..1.0f32),
            rng.random_range(-1.0..0.0f32),
        );
        for y in (cy - r).max(0.0) as u32..((cy + r) as u32).min(height) {
            for x in (cx - r).max(0.0) as u32..((cx + r) as u32).min(width) {
                let (dx, dy) = ((x as f32 - cx) / r, (y as f32 - cy) / r);
                let d2 = dx * dx + dy * dy;
                if d2 < 1.0 {
                    let nz = (1.0 - d2).sqrt();
                    let lambert = (dx * light.0 + dy * light.1 + nz * 0.8).max(0.0);
                    px[(y * width + x) as usize] = scale(base, 0.25 + 0.75 * lambert.min(1.0));
                }
            }
        }
    }
    for _ in 0..rng.random_range(1..4) {
        let pts: Vec<(f32, f32)> = (0..3)
            .map(|_| (rng.random_range(0.0..w), rng.random_range(0.0..h)))
            .collect();
        let color = object_color(&mut rng, &[&TERRACOTTA, &SLATE, &STONE]);
        let edge = |a: (f32, f32), b: (f32, f32), p: (f32, f32)| {
            (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)
        };
        for y in 0..height {
            for x in 0..width {
                let p = (x as f32 + 0.5, y as f32 + 0.5);
                let e = [
                    edge(pts[0], pts[1], p),
                    edge(pts[1], pts[2], p),
                    edge(pts[2], pts[0], p),
                ];
                if e.iter().all(|&v| v >= 0.0) || e.iter().all(|&v| v <= 0.0) {
                    px[(y * width + x) as usize] = color;
                }
            }
        }
    }

    // Texture, vignetting and sensor noise.
    let texture_cell = rng.random_range(3.0..8.0);
    let texture = ValueNoise::new(&mut rng, width, height, texture_cell);
    let strength = rng.random_range(0.1..0.3f32);
    let coarse_cell = rng.random_range(10.0..24.0);
    let coarse = ValueNoise::new(&mut rng, width, height, coarse_cell);
    let coarse_strength = rng.random_range(0.1..0.25f32);
    let mut out = RgbImage::new(width, height);
    for (i, c) in px.iter().enumerate() {
        let (x, y) = ((i as u32 % width) as f32, (i as u32 / width) as f32);
        let (vx, vy) = (x / w - 0.5, y / h - 0.5);
        let gain = (1.0 - 0.5 * (vx * vx + vy * vy))
            * (1.0 - strength / 2.0 + strength * texture.at(x, y))
            * (1.0 - coarse_strength / 2.0 + coarse_strength * coarse.at(x, y));
        let noise: f32 = rng.random_range(-0.02..0.02);
        let to_u8 = |v: f32| ((v * gain + noise).clamp(0.0, 1.0) * 255.0).round() as u8;
        out.put_pixel(
            i as u32 % width,
            i as u32 / width,
            Rgb([to_u8(c[0]), to_u8(c[1]), to_u8(c[2])]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_matches_the_primaries_and_greys() {
        let close = |a: Color, b: Color| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]));
        assert!(close(hsv(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]));
        assert!(close(hsv(240.0, 1.0, 0.5), [0.0, 0.0, 0.5]));
        assert!(close(hsv(30.0, 1.0, 1.0), [1.0, 0.5, 0.0]));
        assert!(close(hsv(200.0, 0.0, 0.4), [0.4, 0.4, 0.4]));
    }

    #[test]
    fn scenes_are_deterministic_and_varied() {
        let a = scene(64, 48, 1);
        assert_eq!(a, scene(64, 48, 1));
        assert_ne!(a, scene(64, 48, 2));
        let mean = |img: &RgbImage| {
            img.as_raw().iter().map(|&v| v as f64).sum::<f64>() / img.as_raw().len() as f64
        };
        let m = mean(&a);
        let var = a
            .as_raw()
            .iter()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / a.as_raw().len() as f64;
        assert!(
            var.sqrt() > 10.0,
            "scene should not be flat (std {})",
            var.sqrt()
        );
    }
}
