//! The keypoint type shared by every detector and descriptor.

use serde::{Deserialize, Serialize};

/// A keypoint in OpenCV's conventions: pixel centres at integer coordinates, `angle` in degrees
/// (-1 when the detector gives none), `size` the diameter of the meaningful neighbourhood.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    /// Column in pixels, x right, 0 at the centre of the left column.
    pub x: f32,
    /// Row in pixels, y down, 0 at the centre of the top row.
    pub y: f32,
    /// Diameter of the meaningful neighbourhood, in pixels.
    pub size: f32,
    /// Orientation in degrees in [0, 360), measured from the x axis towards y (clockwise on
    /// screen); -1 when the detector gives none.
    pub angle: f32,
    /// Detector response: larger is stronger.
    pub response: f32,
    /// Pyramid octave (and, for SIFT, layer) the keypoint was found in, packed as OpenCV does;
    /// 0 for detectors without a pyramid.
    pub octave: i32,
}

impl Keypoint {
    /// Number of values per keypoint in feature files: x, y, size, angle, response, octave.
    pub const FIELDS: usize = 6;

    /// The keypoint as a row of a feature file (`octave` stored as f32, exact for |octave| < 2^24).
    pub fn to_row(&self) -> [f32; Self::FIELDS] {
        [
            self.x,
            self.y,
            self.size,
            self.angle,
            self.response,
            self.octave as f32,
        ]
    }

    /// The inverse of [`Keypoint::to_row`].
    pub fn from_row(row: &[f32]) -> Self {
        Self {
            x: row[0],
            y: row[1],
            size: row[2],
            angle: row[3],
            response: row[4],
            octave: row[5] as i32,
        }
    }

    /// True when the detector assigned an orientation.
    pub fn has_angle(&self) -> bool {
        self.angle >= 0.0
    }
}
