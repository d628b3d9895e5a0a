//! ε-local differential privacy per descriptor, the accounting of LDP-Feat (Pittaluga & Zhuang,
//! ICCV 2023): each descriptor is one release, private on its own; an image's N descriptors
//! compose to N·ε.
//!
//! - Float descriptors: the Laplace mechanism on the unit-L2 descriptor. Two unit vectors of
//!   length D differ by at most 2√D in L1 norm (the sensitivity Δ₁), so adding independent
//!   Laplace noise of scale Δ₁/ε to every value is ε-LDP. The released descriptor is the noisy
//!   unit vector (its norm is not released).
//! - Binary descriptors: randomised response per bit with budget ε/bits each (composition over
//!   the bits gives ε): each bit is flipped with probability 1/(1 + e^(ε/bits)).

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The Laplace scale of ε-LDP for unit vectors of length `d`: 2√d/ε.
pub fn laplace_scale(d: usize, epsilon: f64) -> f64 {
    2.0 * (d as f64).sqrt() / epsilon
}

/// One Laplace(0, `scale`) draw by inverting its CDF.
fn laplace_draw(rng: &mut impl Rng, scale: f64) -> f64 {
    let u: f64 = rng.random::<f64>() - 0.5;
    -scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
}

/// Each row scaled to unit L2 norm (a zero row stays zero).
pub fn unit_rows(descriptors: &Array2<f32>) -> Array2<f32> {
    let mut out = descriptors.clone();
    for mut row in out.rows_mut() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|v| v / norm);
        }
    }
    out
}

/// Each row scaled to unit L2 norm ([`unit_rows`]), plus Laplace noise of scale
/// [`laplace_scale`] on every value.
pub fn laplace(descriptors: &Array2<f32>, epsilon: f64, seed: u64) -> Array2<f32> {
    let scale = laplace_scale(descriptors.ncols(), epsilon);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    unit_rows(descriptors).mapv(|v| (f64::from(v) + laplace_draw(&mut rng, scale)) as f32)
}

/// The probability that randomised response flips one bit of a descriptor of `bits` bits.
pub fn flip_probability(bits: usize, epsilon: f64) -> f64 {
    1.0 / (1.0 + (epsilon / bits as f64).exp())
}

/// Each bit of the packed binary rows flipped independently with [`flip_probability`].
pub fn randomised_response(descriptors: &Array2<u8>, epsilon: f64, seed: u64) -> Array2<u8> {
    let p = flip_probability(descriptors.ncols() * 8, epsilon);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    descriptors.mapv(|byte| {
        (0..8).fold(byte, |b, bit| {
            if rng.random::<f64>() < p {
                b ^ (1 << bit)
            } else {
                b
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kolmogorov–Smirnov distance between the sample and the Laplace(0, b) CDF.
    fn ks_laplace(sample: &mut [f64], b: f64) -> f64 {
        sample.sort_by(f64::total_cmp);
        let n = sample.len() as f64;
        let cdf = |x: f64| {
            if x < 0.0 {
                0.5 * (x / b).exp()
            } else {
                1.0 - 0.5 * (-x / b).exp()
            }
        };
        sample
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn laplace_noise_follows_its_distribution_and_scale() {
        // 1000 descriptors of length 16: noise = output − unit input.
        let d = Array2::from_shape_fn((1000, 16), |(i, j)| ((i + 3 * j) % 7) as f32 + 1.0);
        let epsilon = 8.0;
        let out = laplace(&d, epsilon, 1);
        let b = laplace_scale(16, epsilon);
        assert_eq!(b, 1.0);
        let mut noise: Vec<f64> = d
            .rows()
            .into_iter()
            .zip(out.rows())
            .flat_map(|(x, y)| {
                let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                x.iter()
                    .zip(y)
                    .map(|(a, b)| f64::from(*b) - f64::from(a / norm))
                    .collect::<Vec<_>>()
            })
            .collect();
        // 16 000 draws: the KS distance's 99.9 % critical value is 1.95/√n ≈ 0.0154.
        let ks = ks_laplace(&mut noise, b);
        assert!(ks < 0.0154, "KS distance {ks}");
        // ... and against a scale 25 % off it is far larger.
        assert!(ks_laplace(&mut noise, 1.25 * b) > 0.025);
        let mean_abs = noise.iter().map(|v| v.abs()).sum::<f64>() / noise.len() as f64;
        assert!((mean_abs - b).abs() < 0.03, "E|noise| {mean_abs} vs {b}");
        // Seeded.
        assert_eq!(out, laplace(&d, epsilon, 1));
        assert_ne!(out, laplace(&d, epsilon, 2));
    }

    #[test]
    fn randomised_response_flips_at_its_rate() {
        // 64-byte (512-bit) descriptors at ε = 512·ln 3: p = 1/(1 + 3) = 0.25.
        let epsilon = 512.0 * 3f64.ln();
        assert!((flip_probability(512, epsilon) - 0.25).abs() < 1e-12);
        let d = Array2::from_shape_fn((200, 64), |(i, j)| (i * 31 + j * 7) as u8);
        let out = randomised_response(&d, epsilon, 5);
        let flipped: u32 = d.iter().zip(&out).map(|(a, b)| (a ^ b).count_ones()).sum();
        let rate = f64::from(flipped) / (200.0 * 512.0);
        // 102 400 bits: the standard error of the rate is 0.0014.
        assert!((rate - 0.25).abs() < 0.006, "flip rate {rate}");
        assert_eq!(out, randomised_response(&d, epsilon, 5));
    }
}
