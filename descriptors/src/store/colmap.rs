//! COLMAP's `database.db` (SQLite), in COLMAP 3.8's schema ([`SCHEMA`]).
//!
//! * `cameras`: one per image; `width`, `height` are the image size. featleak writes a
//!   SIMPLE_RADIAL camera (model 2) with COLMAP's default guess: focal 1.2 × the longer side,
//!   principal point at the centre, no distortion.
//! * `images`: `name` (the image path), `camera_id`.
//! * `keypoints`: rows×cols float32 (cols 2: x, y; 4: x, y, scale, orientation in radians; 6:
//!   x, y, affine a11, a12, a21, a22). COLMAP's origin is the top-left *corner* of the image:
//!   x_colmap = x_featleak + 0.5. featleak writes 4 columns: scale = `size / 2`, orientation =
//!   `angle` in radians (0 when the keypoint has none).
//! * `descriptors`: rows×cols uint8 (COLMAP 3.x: SIFT only). Float descriptors are written as
//!   `min(255, round(v × s))` with s = 1 when the values are on OpenCV's 0–255 SIFT scale (any
//!   value above 1; featleak's SIFT is integer-valued there, so exact) and s = 512 for unit-norm
//!   descriptors (RootSIFT; COLMAP's own scaling), and read back as v = byte / s. Negative
//!   values (SOSNet) cannot be stored and are refused. COLMAP 4's `type` column is read: type 0
//!   (SIFT) is uint8, any other type float32.
//!
//! featleak adds two tables that COLMAP ignores: `featleak_extractor` (one row, the extractor
//! JSON) and `featleak_images` (per image: the N×6 float32 keypoint rows of a `.npz`, the
//! descriptor kind and the scale s), so that what featleak wrote reads back exactly (up to the
//! uint8 rounding of non-integer float descriptors). Files without them read as extractor
//! `"unknown"`, uint8 descriptors as float SIFT values, keypoints with response and octave 0.

use super::{OneExtractor, check_name, image_error, store_error};
use crate::Keypoint;
use crate::error::FeatureFileError;
use crate::features::{Descriptors, ExtractorInfo, FeatureSet};
use ndarray::Array2;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// COLMAP 3.8's tables and index, as its `Database::CreateTables` makes them.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cameras
   (camera_id            INTEGER  PRIMARY KEY AUTOINCREMENT  NOT NULL,
    model                INTEGER                             NOT NULL,
    width                INTEGER                             NOT NULL,
    height               INTEGER                             NOT NULL,
    params               BLOB,
    prior_focal_length   INTEGER                             NOT NULL);
CREATE TABLE IF NOT EXISTS images
   (image_id   INTEGER  PRIMARY KEY AUTOINCREMENT  NOT NULL,
    name       TEXT                                NOT NULL UNIQUE,
    camera_id  INTEGER                             NOT NULL,
    prior_qw   REAL,
    prior_qx   REAL,
    prior_qy   REAL,
    prior_qz   REAL,
    prior_tx   REAL,
    prior_ty   REAL,
    prior_tz   REAL,
CONSTRAINT image_id_check CHECK(image_id >= 0 and image_id < 2147483647),
FOREIGN KEY(camera_id) REFERENCES cameras(camera_id));
CREATE UNIQUE INDEX IF NOT EXISTS index_name ON images(name);
CREATE TABLE IF NOT EXISTS keypoints
   (image_id  INTEGER  PRIMARY KEY  NOT NULL,
    rows      INTEGER               NOT NULL,
    cols      INTEGER               NOT NULL,
    data      BLOB,
FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS descriptors
   (image_id  INTEGER  PRIMARY KEY  NOT NULL,
    rows      INTEGER               NOT NULL,
    cols      INTEGER               NOT NULL,
    data      BLOB,
FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS matches
   (pair_id  INTEGER  PRIMARY KEY  NOT NULL,
    rows     INTEGER               NOT NULL,
    cols     INTEGER               NOT NULL,
    data     BLOB);
CREATE TABLE IF NOT EXISTS two_view_geometries
   (pair_id  INTEGER  PRIMARY KEY  NOT NULL,
    rows     INTEGER               NOT NULL,
    cols     INTEGER               NOT NULL,
    data     BLOB,
    config   INTEGER               NOT NULL,
    F        BLOB,
    E        BLOB,
    H        BLOB,
    qvec     BLOB,
    tvec     BLOB);
";

/// featleak's own tables, ignored by COLMAP.
pub const FEATLEAK_SCHEMA: &str = "
CREATE TABLE featleak_extractor (json TEXT NOT NULL);
CREATE TABLE featleak_images
   (image_id     INTEGER  PRIMARY KEY  NOT NULL,
    keypoints    BLOB                  NOT NULL,
    descriptors  TEXT                  NOT NULL,
    scale        REAL                  NOT NULL,
FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE);
";

/// COLMAP's SIMPLE_RADIAL camera model.
const SIMPLE_RADIAL: i64 = 2;

/// COLMAP's scaling of unit-norm float descriptors to uint8.
pub const UNIT_NORM_SCALE: f32 = 512.0;

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> FeatureFileError + '_ {
    move |e| FeatureFileError::Library {
        path: path.to_path_buf(),
        library: "SQLite",
        message: e.to_string(),
    }
}

fn has_table(db: &Connection, table: &str) -> rusqlite::Result<bool> {
    db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The extractor in `featleak_extractor`; `None` without that table.
fn recorded_extractor(
    path: &Path,
    db: &Connection,
) -> Result<Option<ExtractorInfo>, FeatureFileError> {
    if !has_table(db, "featleak_extractor").map_err(sqlite_error(path))? {
        return Ok(None);
    }
    let json: String = db
        .query_row("SELECT json FROM featleak_extractor", [], |r| r.get(0))
        .map_err(sqlite_error(path))?;
    serde_json::from_str(&json).map(Some).map_err(|e| {
        store_error(
            path,
            format!("featleak_extractor is not extractor JSON ({e})"),
        )
    })
}

/// A matrix blob's shape, checked against its length before anything is converted.
fn blob_shape(
    rows: i64,
    cols: i64,
    len: usize,
    item: usize,
    what: &str,
) -> Result<(usize, usize), String> {
    let (Ok(r), Ok(c)) = (usize::try_from(rows), usize::try_from(cols)) else {
        return Err(format!("{what} claims {rows}×{cols} values"));
    };
    match r.checked_mul(c).and_then(|n| n.checked_mul(item)) {
        Some(bytes) if bytes == len => Ok((r, c)),
        _ => Err(format!(
            "{what} claims {r}×{c} values of {item} byte(s) but its blob holds {len} bytes"
        )),
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// A COLMAP `.db` opened for reading.
pub struct ColmapReader {
    path: PathBuf,
    db: Connection,
    extractor: ExtractorInfo,
    has_type: bool,
    has_featleak: bool,
}

impl ColmapReader {
    /// Opens `path` read-only; it must have COLMAP's `cameras`, `images`, `keypoints` and
    /// `descriptors` tables.
    pub fn open(path: &Path) -> Result<Self, FeatureFileError> {
        let err = sqlite_error(path);
        let db =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
        for table in ["cameras", "images", "keypoints", "descriptors"] {
            if !has_table(&db, table).map_err(&err)? {
                return Err(store_error(
                    path,
                    format!("not a COLMAP database: no '{table}' table"),
                ));
            }
        }
        let has_type = db
            .prepare("SELECT name FROM pragma_table_info('descriptors')")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(&err)?
            .iter()
            .any(|c| c == "type");
        let has_featleak = has_table(&db, "featleak_images").map_err(&err)?;
        let extractor = recorded_extractor(path, &db)?.unwrap_or_else(super::unknown_extractor);
        Ok(Self {
            path: path.to_path_buf(),
            db,
            extractor,
            has_type,
            has_featleak,
        })
    }

    /// The keypoints of image `image_id` from the `keypoints` table alone.
    fn colmap_keypoints(
        &self,
        image_id: i64,
    ) -> Result<Result<Vec<Keypoint>, String>, rusqlite::Error> {
        let row: Option<(i64, i64, Vec<u8>)> = self
            .db
            .query_row(
                "SELECT rows, cols, data FROM keypoints WHERE image_id = ?1",
                [image_id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                    ))
                },
            )
            .optional()?;
        let Some((rows, cols, data)) = row else {
            return Ok(Err("no row in 'keypoints'".into()));
        };
        let (n, c) = match blob_shape(rows, cols, data.len(), 4, "'keypoints'") {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if ![2, 4, 6].contains(&c) {
            return Ok(Err(format!(
                "'keypoints' has {c} columns, COLMAP writes 2, 4 or 6"
            )));
        }
        let v = f32s(&data);
        Ok(Ok((0..n)
            .map(|i| {
                let r = &v[i * c..(i + 1) * c];
                let (scale, orientation) = match c {
                    4 => (Some(r[2]), Some(r[3])),
                    6 => (Some(r[2].hypot(r[4])), Some(r[4].atan2(r[2]))),
                    _ => (None, None),
                };
                Keypoint {
                    x: r[0] - 0.5,
                    y: r[1] - 0.5,
                    size: scale.map_or(super::hloc::DEFAULT_SIZE, |s| 2.0 * s),
                    angle: orientation.map_or(-1.0, |o| o.to_degrees().rem_euclid(360.0)),
                    response: 0.0,
                    octave: 0,
                }
            })
            .collect()))
    }
}

impl super::FeatureReader for ColmapReader {
    fn path(&self) -> &Path {
        &self.path
    }

    fn names(&self) -> Result<Vec<String>, FeatureFileError> {
        let mut names = self
            .db
            .prepare("SELECT name FROM images ORDER BY name")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sqlite_error(&self.path))?;
        if names.is_empty() {
            return Err(store_error(&self.path, "holds no image"));
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> Result<FeatureSet, FeatureFileError> {
        let err = sqlite_error(&self.path);
        let problem = |p: String| image_error(&self.path, name, p);
        let (image_id, width, height): (i64, i64, i64) = self
            .db
            .query_row(
                "SELECT images.image_id, cameras.width, cameras.height FROM images \
                 JOIN cameras ON cameras.camera_id = images.camera_id WHERE images.name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(&err)?
            .ok_or_else(|| problem("not in 'images', or its camera not in 'cameras'".into()))?;
        let image_size = super::image_size_from_wh(width, height).map_err(&problem)?;

        let ours: Option<(Vec<u8>, String, f64)> = if self.has_featleak {
            self.db
                .query_row(
                    "SELECT keypoints, descriptors, scale FROM featleak_images WHERE image_id = ?1",
                    [image_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(&err)?
        } else {
            None
        };
        let colmap_keypoints = self
            .colmap_keypoints(image_id)
            .map_err(&err)?
            .map_err(&problem)?;
        let keypoints = match &ours {
            Some((rows, _, _)) => {
                let n = colmap_keypoints.len();
                blob_shape(
                    n as i64,
                    Keypoint::FIELDS as i64,
                    rows.len(),
                    4,
                    "'featleak_images.keypoints'",
                )
                .map_err(|e| problem(format!("{e} (for the {n} keypoints of 'keypoints')")))?;
                f32s(rows)
                    .chunks_exact(Keypoint::FIELDS)
                    .map(Keypoint::from_row)
                    .collect()
            }
            None => colmap_keypoints,
        };

        let columns = if self.has_type {
            "rows, cols, data, type"
        } else {
            "rows, cols, data, 0"
        };
        let (rows, cols, data, kind): (i64, i64, Vec<u8>, i64) = self
            .db
            .query_row(
                &format!("SELECT {columns} FROM descriptors WHERE image_id = ?1"),
                [image_id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(&err)?
            .ok_or_else(|| problem("no row in 'descriptors'".into()))?;
        // COLMAP 4 stores SIFT (type 0) as uint8 and learned descriptors as float32.
        let item = if kind == 0 { 1 } else { 4 };
        let (n, d) = blob_shape(rows, cols, data.len(), item, "'descriptors'").map_err(&problem)?;
        if n != keypoints.len() {
            return Err(problem(format!(
                "{} keypoints but {n} descriptors",
                keypoints.len()
            )));
        }
        let descriptors = match (&ours, item) {
            (Some((_, kind, _)), 1) if kind == "binary" => {
                Descriptors::Binary(Array2::from_shape_vec((n, d), data).expect("shape checked"))
            }
            (ours, 1) => {
                let scale = ours.as_ref().map_or(1.0, |o| o.2 as f32);
                Descriptors::Float(
                    Array2::from_shape_vec((n, d), data)
                        .expect("shape checked")
                        .mapv(|b| f32::from(b) / scale),
                )
            }
            _ => Descriptors::Float(
                Array2::from_shape_vec((n, d), f32s(&data)).expect("shape checked"),
            ),
        };
        let features = FeatureSet {
            image_size,
            keypoints,
            descriptors,
            extractor: self.extractor.clone(),
        };
        crate::npz::check_values(&features).map_err(problem)?;
        Ok(features)
    }
}

/// A new COLMAP `.db`, written in one transaction to `<path>.partial` and moved into place by
/// `finish`.
pub struct ColmapWriter {
    path: PathBuf,
    partial: PathBuf,
    db: Connection,
    extractor: OneExtractor,
}

impl ColmapWriter {
    /// Refuses `path` when a file there is not a database featleak wrote.
    pub fn check_destination(path: &Path) -> Result<(), FeatureFileError> {
        if path.exists() {
            let ours = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()
                .and_then(|db| recorded_extractor(path, &db).ok().flatten())
                .is_some();
            if !ours {
                return Err(store_error(
                    path,
                    "exists and was not written by featleak (no 'featleak_extractor' table); \
                     choose another destination",
                ));
            }
        }
        Ok(())
    }

    /// Starts writing `path`; an existing file there must be a database featleak wrote.
    pub fn create(path: &Path) -> Result<Self, FeatureFileError> {
        Self::check_destination(path)?;
        let partial = super::partial_path(path);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|source| FeatureFileError::Io {
                path: partial.clone(),
                source,
            })?;
        }
        let db = Connection::open(&partial)
            .and_then(|db| {
                db.execute_batch(&format!("{SCHEMA}{FEATLEAK_SCHEMA}BEGIN;"))?;
                Ok(db)
            })
            .map_err(sqlite_error(&partial))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            db,
            extractor: OneExtractor::default(),
        })
    }
}

/// Float descriptors as COLMAP's uint8, with the scale used (see the module documentation).
fn to_bytes(d: &Array2<f32>) -> Result<(Vec<u8>, f32), String> {
    if let Some(v) = d.iter().find(|v| v.is_nan() || **v < 0.0) {
        return Err(format!(
            "COLMAP stores descriptors as uint8 but these hold {v} (signed descriptors such as \
             SOSNet's); use an .h5 or a folder of .npz instead"
        ));
    }
    let scale = if d.iter().all(|&v| v <= 1.0) {
        UNIT_NORM_SCALE
    } else {
        1.0
    };
    Ok((
        d.iter()
            .map(|&v| (v * scale).round().min(255.0) as u8)
            .collect(),
        scale,
    ))
}

impl super::FeatureWriter for ColmapWriter {
    fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, name: &str, features: &FeatureSet) -> Result<(), FeatureFileError> {
        check_name(&self.path, name)?;
        let err = sqlite_error(&self.partial);
        if self
            .extractor
            .check(&self.path, name, &features.extractor)?
        {
            let json = serde_json::to_string(&features.extractor).expect("extractor serialises");
            self.db
                .execute("INSERT INTO featleak_extractor (json) VALUES (?1)", [json])
                .map_err(&err)?;
        }
        let (h, w) = features.image_size;
        let params = [
            1.2 * f64::from(h.max(w)),
            f64::from(w) / 2.0,
            f64::from(h) / 2.0,
            0.0,
        ];
        let params: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
        self.db
            .execute(
                "INSERT INTO cameras (model, width, height, params, prior_focal_length) \
                 VALUES (?1, ?2, ?3, ?4, 0)",
                params![SIMPLE_RADIAL, w, h, params],
            )
            .map_err(&err)?;
        let camera_id = self.db.last_insert_rowid();
        let inserted = self
            .db
            .execute(
                "INSERT OR IGNORE INTO images (name, camera_id) VALUES (?1, ?2)",
                params![name, camera_id],
            )
            .map_err(&err)?;
        if inserted == 0 {
            return Err(image_error(&self.path, name, "written twice"));
        }
        let image_id = self.db.last_insert_rowid();
        let n = features.len() as i64;
        let kps = &features.keypoints;
        let colmap = f32_bytes(kps.iter().flat_map(|k| {
            let orientation = if k.has_angle() {
                k.angle.to_radians()
            } else {
                0.0
            };
            [k.x + 0.5, k.y + 0.5, k.size / 2.0, orientation]
        }));
        self.db
            .execute(
                "INSERT INTO keypoints (image_id, rows, cols, data) VALUES (?1, ?2, 4, ?3)",
                params![image_id, n, colmap],
            )
            .map_err(&err)?;
        let (bytes, cols, kind, scale) = match &features.descriptors {
            Descriptors::Binary(d) => (d.iter().copied().collect(), d.ncols(), "binary", 1.0),
            Descriptors::Float(d) => {
                let (bytes, scale) = to_bytes(d).map_err(|e| image_error(&self.path, name, e))?;
                (bytes, d.ncols(), "float", scale)
            }
        };
        self.db
            .execute(
                "INSERT INTO descriptors (image_id, rows, cols, data) VALUES (?1, ?2, ?3, ?4)",
                params![image_id, n, cols as i64, bytes],
            )
            .map_err(&err)?;
        let rows = f32_bytes(kps.iter().flat_map(Keypoint::to_row));
        self.db
            .execute(
                "INSERT INTO featleak_images (image_id, keypoints, descriptors, scale) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![image_id, rows, kind, f64::from(scale)],
            )
            .map_err(&err)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), FeatureFileError> {
        let Self {
            path, partial, db, ..
        } = *self;
        db.execute_batch("COMMIT;")
            .map_err(sqlite_error(&partial))?;
        db.close().map_err(|(_, e)| sqlite_error(&partial)(e))?;
        super::move_into_place(&partial, &path)
    }
}
