//! The keypoint type shared by every detector and descriptor.

use serde::{Deserialize, Serialize};

/// A keypoint in OpenCV's conventions: pixel centres at integer coordinates, `angle` in degrees
/// (-1 when the detector gives none), `size` the diameter of the meaningful neighbourhood.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub angle: f32,
    pub response: f32,
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
