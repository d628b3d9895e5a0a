//! End-to-end test of `featleak datasets fetch` against a local HTTP server on 127.0.0.1 (the
//! real hosts cannot be reached from the development machine): an interrupted download resumes
//! with a Range request, the SHA-256 is checked, the archive is extracted, and a second fetch is
//! a no-op.

mod common;

use common::{assert_error, featleak, stderr};
use featleak_datasets::fetch::{partial_path, sha256_of};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A tar.gz holding a tiny HPatches-style sequence, made with the `tar` and `flate2` crates.
fn archive() -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    // Incompressible content, so that half the archive is half the bytes.
    let mut noise = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        noise.push((x >> 24) as u8);
    }
    for (name, data) in [
        ("hpatches-sequences-release/v_test/1.ppm", noise.as_slice()),
        (
            "hpatches-sequences-release/v_test/H_1_2",
            b"1 0 0\n0 1 0\n0 0 1\n".as_slice(),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Serves `body` at any path. The first `cut` responses send only half of it and close the
/// connection; `Range: bytes=N-` gets a 206 with the rest. Returns the port and the log of
/// Range headers seen.
fn serve(body: Vec<u8>, cut: usize) -> (u16, Arc<Mutex<Vec<Option<u64>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let served = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse::<u64>().ok();
                }
            }
            seen.lock().unwrap().push(range);
            let start = range.unwrap_or(0) as usize;
            let status = if range.is_some() {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let rest = &body[start..];
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                rest.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            let n = served.fetch_add(1, Ordering::SeqCst);
            let send = if n < cut {
                &rest[..rest.len() / 2]
            } else {
                rest
            };
            let _ = stream.write_all(send);
        }
    });
    (port, ranges)
}

#[test]
fn fetch_resumes_checks_and_extracts() {
    let body = archive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("served.tar.gz");
    std::fs::write(&file, &body).unwrap();
    let (_, sha) = sha256_of(&file).unwrap();
    let (port, ranges) = serve(body.clone(), 1);
    let url = format!("http://127.0.0.1:{port}/hpatches-sequences-release.tar.gz");
    let to = dir.path().join("hpatches");
    let fetch = || {
        featleak()
            .args(["datasets", "fetch", "hpatches", "--to"])
            .arg(&to)
            .args(["--url", &url, "--sha256", &sha])
            .output()
            .unwrap()
    };

    // The connection drops halfway: a clear error, and the partial file stays.
    let out = fetch();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("interrupted") && stderr(&out).contains("rerun to resume"),
        "{}",
        stderr(&out)
    );
    let partial = std::fs::metadata(partial_path(&to, &url)).unwrap().len();
    assert_eq!(partial, (body.len() / 2) as u64);

    // The rerun asks for the rest only, checks the hash and extracts.
    let out = fetch();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("resumed a partial download at {partial} bytes")),
        "{stdout}"
    );
    assert!(stdout.contains("(matches)") && stdout.contains("2 files extracted"));
    assert_eq!(*ranges.lock().unwrap(), vec![None, Some(partial)]);
    let seq = to.join("hpatches-sequences-release/v_test");
    assert_eq!(std::fs::read(seq.join("1.ppm")).unwrap().len(), 200_000);
    assert!(seq.join("H_1_2").is_file());
    assert!(!to.join(".download").exists(), "the archive is removed");

    // A second fetch does nothing.
    let out = fetch();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already in"));
    assert_eq!(ranges.lock().unwrap().len(), 2);

    // ... unless it is asked for another checksum than the one fetched: then it says so.
    let wrong = "0".repeat(64);
    let out = featleak()
        .args(["datasets", "fetch", "hpatches", "--to"])
        .arg(&to)
        .args(["--url", &url, "--sha256", &wrong])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&sha) && err.contains(&wrong), "{err}");
    assert_eq!(ranges.lock().unwrap().len(), 2, "nothing downloaded");

    // A wrong checksum fails, naming the file and both hashes, and leaves nothing behind.
    let other = dir.path().join("other");
    let out = featleak()
        .args(["datasets", "fetch", "hpatches", "--to"])
        .arg(&other)
        .args(["--url", &url, "--sha256", &wrong])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("hpatches-sequences-release.tar.gz")
            && err.contains(&sha)
            && err.contains(&wrong),
        "{err}"
    );
    assert!(!other.join("fetch.json").exists());

    // Unknown datasets and malformed hashes are refused before any download.
    let out = featleak()
        .args(["datasets", "fetch", "imagenet", "--to"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("unknown dataset 'imagenet' (known: hpatches, megadepth-sample)")
    );
    let out = featleak()
        .args(["datasets", "fetch", "hpatches", "--to"])
        .arg(&other)
        .args(["--sha256", "abc"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("--sha256 must be 64 hexadecimal digits"));
}

#[test]
fn fetch_gives_up_on_a_server_that_never_answers() {
    // Accepts connections and holds them without a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(60));
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/hpatches-sequences-release.tar.gz");
    let fetch = |timeout: &str| {
        featleak()
            .args(["datasets", "fetch", "hpatches", "--to"])
            .arg(dir.path().join("h"))
            .args(["--url", &url, "--timeout", timeout])
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    assert_error(&fetch("1"), &format!("cannot reach {url}"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "gave up long before the server would have closed"
    );
    assert_error(&fetch("0"), "'0' is not a number of seconds above 0");
}

#[test]
fn fetch_gives_up_on_a_server_that_stalls_mid_body() {
    use std::io::Read;
    // Answers with the start of a 1 MB body, then holds the connection without a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: application/gzip\r\n\r\n",
            );
            let _ = stream.write_all(&[0x1f; 1000]);
            let _ = stream.flush();
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/hpatches-sequences-release.tar.gz");
    let started = std::time::Instant::now();
    let out = featleak()
        .args(["datasets", "fetch", "hpatches", "--to"])
        .arg(dir.path().join("h"))
        .args(["--url", &url, "--timeout", "1"])
        .output()
        .unwrap();
    assert_error(
        &out,
        &format!(
            "download of {url} interrupted after 1000 bytes (timeout: per read); rerun to resume"
        ),
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "gave up long before the server would have closed"
    );
    // What came is kept for the rerun.
    let partial = partial_path(&dir.path().join("h"), &url);
    assert_eq!(std::fs::metadata(partial).unwrap().len(), 1000);
}
