//! Defences that act on each value alone: quantisation of descriptor values, coarsening of
//! keypoint positions.

use featleak_descriptors::Keypoint;
use ndarray::Array2;

/// Each row's values on `2^bits` evenly spaced levels between the row's min and max, dequantised
/// (a row whose values are all equal is unchanged). Sending it costs `bits` per value plus the two
/// floats of the range.
pub fn quantise(descriptors: &Array2<f32>, bits: u32) -> Array2<f32> {
    let steps = ((1u32 << bits) - 1) as f32;
    let mut out = descriptors.clone();
    for mut row in out.rows_mut() {
        let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let span = hi - lo;
        if span > 0.0 {
            row.mapv_inplace(|v| lo + ((v - lo) / span * steps).round() * span / steps);
        }
    }
    out
}

/// Moves each keypoint to the centre of its `cell`×`cell`-pixel cell of a grid anchored at pixel
/// (0, 0)'s top-left corner (pixel centres at integer coordinates, so cell `k` spans
/// `[k·cell − 0.5, (k + 1)·cell − 0.5)`).
pub fn coarsen_positions(keypoints: &mut [Keypoint], cell: f32) {
    let snap = |v: f32| ((v + 0.5) / cell).floor() * cell + cell / 2.0 - 0.5;
    for k in keypoints {
        k.x = snap(k.x);
        k.y = snap(k.y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn quantisation_worked_by_hand() {
        // Range 0–3: one bit gives levels {0, 3}; two bits {0, 1, 2, 3}.
        let d = array![[0.0, 1.2, 1.6, 3.0], [5.0, 5.0, 5.0, 5.0]];
        assert_eq!(
            quantise(&d, 1),
            array![[0.0, 0.0, 3.0, 3.0], [5.0, 5.0, 5.0, 5.0]]
        );
        assert_eq!(
            quantise(&d, 2),
            array![[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]]
        );
        // Eight bits on SIFT's integer values 0–255 change nothing.
        let sift = array![[0.0, 17.0, 200.0, 255.0]];
        assert_eq!(quantise(&sift, 8), sift);
    }

    #[test]
    fn coarsening_worked_by_hand() {
        let kp = |x, y| Keypoint {
            x,
            y,
            size: 3.0,
            angle: -1.0,
            response: 1.0,
            octave: 0,
        };
        // Cells of 4 px: pixels 0–3 are cell 0, centred at 1.5; pixels 4–7 cell 1, at 5.5.
        let mut k = vec![kp(0.0, 3.0), kp(3.4, 4.0), kp(-0.5, 7.49)];
        coarsen_positions(&mut k, 4.0);
        let xy: Vec<_> = k.iter().map(|k| (k.x, k.y)).collect();
        assert_eq!(xy, [(1.5, 1.5), (1.5, 5.5), (1.5, 5.5)]);
        // One-pixel cells move a keypoint to its pixel's centre.
        let mut k = vec![kp(2.3, 5.6)];
        coarsen_positions(&mut k, 1.0);
        assert_eq!((k[0].x, k[0].y), (2.0, 6.0));
        assert_eq!(k[0].size, 3.0);
    }
}
