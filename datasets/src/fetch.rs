//! Downloaders for public benchmark data: official URLs, resumable HTTP downloads (a partial
//! file is continued with a `Range` request), SHA-256 checks and archive extraction.
//!
//! Layout of a fetch into `DIR`: the archive is downloaded to `DIR/.download/NAME.part`, renamed
//! to `DIR/.download/NAME` when complete, checked, extracted into `DIR`, then deleted; `DIR/fetch.json`
//! records the dataset, URL, size and SHA-256 and marks the fetch as done.

use crate::FileError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Archive formats the downloaders extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Archive {
    /// A gzip-compressed tarball (`.tar.gz`).
    TarGz,
    /// A zip archive.
    Zip,
}

/// A dataset featleak knows how to fetch.
#[derive(Clone, Debug)]
pub struct KnownDataset {
    /// The name `featleak datasets fetch` takes (e.g. `hpatches`).
    pub name: &'static str,
    /// The official download URL of the archive.
    pub url: &'static str,
    /// The archive's format.
    pub archive: Archive,
    /// The publisher's SHA-256, when one is published.
    pub sha256: Option<&'static str>,
    /// One line for listings: what the data is, its source and its download size.
    pub about: &'static str,
}

/// The datasets `featleak datasets fetch` knows. Neither publisher gives a checksum; the hash
/// computed on download is recorded in `fetch.json` and can be pinned with `--sha256`.
pub const DATASETS: &[KnownDataset] = &[
    KnownDataset {
        name: "hpatches",
        url: "http://icvl.ee.ic.ac.uk/vbalnt/hpatches/hpatches-sequences-release.tar.gz",
        archive: Archive::TarGz,
        sha256: None,
        about: "HPatches sequences (Balntas et al. 2017): 116 scenes × 6 images with homographies, about 1.3 GB",
    },
    KnownDataset {
        name: "megadepth-sample",
        url: "https://cvg-data.inf.ethz.ch/megadepth/megadepth1500.zip",
        archive: Archive::Zip,
        sha256: None,
        about: "MegaDepth-1500 (the LoFTR/glue-factory test split): 1500 outdoor image pairs, about 0.6 GB",
    },
];

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No known dataset has this name.
    #[error("unknown dataset '{name}' (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A local file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::FileError),
    /// The server could not be reached.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP status {status}")]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The download stopped before the end; a rerun resumes it.
    #[error("download of {url} interrupted after {detail}; rerun to resume")]
    Interrupted {
        /// The URL.
        url: String,
        /// How far it got, and why when known.
        detail: String,
    },
    /// The archive's SHA-256 is not the expected one.
    #[error("{}: SHA-256 is {found}, expected {expected}{}", .path.display(), if *.deleted { "; the file was deleted, rerun to download it again" } else { "" })]
    Checksum {
        /// The archive (or the folder that holds what was extracted from it).
        path: PathBuf,
        /// Its SHA-256.
        found: String,
        /// The SHA-256 asked for.
        expected: String,
        /// Whether the archive was deleted.
        deleted: bool,
    },
    /// The archive cannot be read.
    #[error("{}: not a valid archive ({reason})", .path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// The reader's reason.
        reason: String,
    },
}

/// The known dataset called `name`.
pub fn dataset(name: &str) -> Result<&'static KnownDataset, FetchError> {
    DATASETS
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| FetchError::Unknown {
            name: name.into(),
            known: DATASETS
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `fetch.json`: what was fetched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchRecord {
    /// The dataset's name, as passed to [`fetch`].
    pub dataset: String,
    /// The URL the archive came from; a later fetch of the same URL does nothing.
    pub url: String,
    /// Size of the downloaded archive in bytes.
    pub bytes: u64,
    /// SHA-256 of the downloaded archive, lower-case hex.
    pub sha256: String,
    /// Files extracted (not counting folders).
    pub files: usize,
}

/// Download progress: bytes so far and the total when known.
pub trait FetchProgress {
    /// Called with `done` bytes of the archive on disk (including any resumed part) and the
    /// archive's `total` size when the server sent a `Content-Length`.
    fn bytes(&mut self, done: u64, total: Option<u64>);
}

/// What a fetch did.
pub enum Fetched {
    /// `fetch.json` already recorded this URL: nothing was done.
    Already(FetchRecord),
    /// Downloaded (resuming `resumed_from` bytes of an earlier attempt) and extracted.
    New {
        /// What was fetched, as written to `fetch.json`.
        record: FetchRecord,
        /// Bytes of an earlier partial download that were kept (0 for a fresh download).
        resumed_from: u64,
    },
}

/// Fetches `url` (an `archive`) into `to`; `sha256`, when given, must match the archive. A
/// server that takes longer than `timeout` to connect, to answer, or to send more of the body
/// fails the fetch. Interrupted downloads leave `.part` files that the next call continues.
pub fn fetch(
    name: &str,
    url: &str,
    archive: Archive,
    sha256: Option<&str>,
    to: &Path,
    timeout: Duration,
    progress: &mut dyn FetchProgress,
) -> Result<Fetched, FetchError> {
    let record_path = to.join("fetch.json");
    if let Ok(text) = std::fs::read_to_string(&record_path)
        && let Ok(record) = serde_json::from_str::<FetchRecord>(&text)
        && record.url == url
    {
        // What is already there must be what is asked for.
        if let Some(expected) = sha256
            && !expected.eq_ignore_ascii_case(&record.sha256)
        {
            return Err(FetchError::Checksum {
                path: to.to_path_buf(),
                found: record.sha256,
                expected: expected.into(),
                deleted: false,
            });
        }
        return Ok(Fetched::Already(record));
    }
    let file_name = archive_name(url);
    let download = to.join(".download");
    std::fs::create_dir_all(&download).map_err(FileError::io("create", &download))?;
    let complete = download.join(file_name);
    let part = download.join(format!("{file_name}.part"));
    let mut resumed_from = 0;
    if !complete.exists() {
        resumed_from = download_to(url, &part, timeout, progress)?;
        std::fs::rename(&part, &complete).map_err(FileError::io("rename", &part))?;
    }
    let (bytes, digest) = sha256_of(&complete)?;
    if let Some(expected) = sha256
        && !expected.eq_ignore_ascii_case(&digest)
    {
        let _ = std::fs::remove_file(&complete);
        return Err(FetchError::Checksum {
            path: complete,
            found: digest,
            expected: expected.into(),
            deleted: true,
        });
    }
    let files = extract(&complete, archive, to)?;
    let record = FetchRecord {
        dataset: name.into(),
        url: url.into(),
        bytes,
        sha256: digest,
        files,
    };
    let json = serde_json::to_string_pretty(&record).expect("a record serialises");
    crate::files::write_bytes(&record_path, json.as_bytes())?;
    let _ = std::fs::remove_file(&complete);
    let _ = std::fs::remove_dir(&download);
    Ok(Fetched::New {
        record,
        resumed_from,
    })
}

/// Downloads `url` into `part`, continuing what `part` already holds; returns the bytes that
/// were already there.
fn download_to(
    url: &str,
    part: &Path,
    timeout: Duration,
    progress: &mut dyn FetchProgress,
) -> Result<u64, FetchError> {
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    // Each wait is bounded (connecting, each read and write); the whole download is not, so a
    // large archive on a slow line still completes.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| FetchError::Unreachable {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (mut file, start) = match status {
        206 if have > 0 => (
            OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(FileError::io("open", part))?,
            have,
        ),
        200 => (
            File::create(part).map_err(FileError::io("create", part))?,
            0,
        ),
        416 if have > 0 => return Ok(have), // nothing left to send: the part is complete
        status => {
            return Err(FetchError::Http {
                url: url.into(),
                status,
            });
        }
    };
    let total = length.map(|l| l + start);
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    progress.bytes(done, total);
    loop {
        let n = reader.read(&mut buf).map_err(|e| FetchError::Interrupted {
            url: url.into(),
            detail: format!("{done} bytes ({e})"),
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .map_err(FileError::io("write", part))?;
        done += n as u64;
        progress.bytes(done, total);
    }
    file.sync_all().map_err(FileError::io("write", part))?;
    if let Some(t) = total
        && done != t
    {
        return Err(FetchError::Interrupted {
            url: url.into(),
            detail: format!("{done} of {t} bytes"),
        });
    }
    Ok(start)
}

/// Size and SHA-256 (lower-case hex) of a file.
pub fn sha256_of(path: &Path) -> Result<(u64, String), FileError> {
    let mut file = File::open(path).map_err(FileError::io("open", path))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(FileError::io("read", path))?;
    let digest = hasher.finalize();
    Ok((bytes, digest.iter().map(|b| format!("{b:02x}")).collect()))
}

/// Extracts `archive` into `to` (entries escaping `to` are refused by both readers); returns the
/// number of files.
fn extract(path: &Path, archive: Archive, to: &Path) -> Result<usize, FetchError> {
    let bad = |e: &dyn std::fmt::Display| FetchError::Archive {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = File::open(path).map_err(FileError::io("open", path))?;
    match archive {
        Archive::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let mut files = 0;
            for entry in tar.entries().map_err(|e| bad(&e))? {
                let mut entry = entry.map_err(|e| bad(&e))?;
                if entry.header().entry_type().is_file() {
                    files += 1;
                }
                entry.unpack_in(to).map_err(|e| bad(&e))?;
            }
            Ok(files)
        }
        Archive::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
            let files = (0..zip.len())
                .filter(|&i| zip.by_index(i).is_ok_and(|f| f.is_file()))
                .count();
            zip.extract(to).map_err(|e| bad(&e))?;
            Ok(files)
        }
    }
}

/// Where `fetch` keeps the partial download of `url` in `to`.
pub fn partial_path(to: &Path, url: &str) -> PathBuf {
    to.join(".download")
        .join(format!("{}.part", archive_name(url)))
}

/// The archive's file name: the URL's last segment.
fn archive_name(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("download")
}
