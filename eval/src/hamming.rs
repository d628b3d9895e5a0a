//! Brute-force Hamming matching of binary descriptors (FREAK, ORB, BRIEF): rows of an
//! `N × bytes` `u8` matrix, compared with `u64` popcounts.
//!
//! All matchers scan every (query, train) pair once, single-threaded, eight train rows at a time
//! (train rows stored word-major in blocks of 8, so the 8 distances are one vector of popcounts).
//! Ties are broken towards the lowest index, so results are deterministic. On x86-64 the scan is
//! compiled for AVX-512 VPOPCNTDQ, or AVX2 + POPCNT, when the CPU has them (checked at run time).

use ndarray::ArrayView2;

/// A correspondence between row `query` of the query descriptors and row `train` of the train
/// descriptors, at Hamming `distance` (bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Match {
    /// Row of the query descriptor matrix.
    pub query: usize,
    /// Row of the train descriptor matrix.
    pub train: usize,
    /// Hamming distance in bits.
    pub distance: u32,
}

/// The nearest and second-nearest train rows of one query row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbours {
    /// Lowest-index train row at the smallest distance.
    pub best: usize,
    /// Distance to `best`.
    pub distance: u32,
    /// Second-smallest distance (equal to `distance` on a tie), `None` with a single train row.
    pub second_distance: Option<u32>,
}

/// Hamming distance between two byte strings of equal length.
///
/// # Panics
/// If the lengths differ.
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: descriptor lengths differ");
    let mut words_a = a.chunks_exact(8);
    let mut words_b = b.chunks_exact(8);
    let mut d: u32 = words_a
        .by_ref()
        .zip(words_b.by_ref())
        .map(|(x, y)| (le_word(x) ^ le_word(y)).count_ones())
        .sum();
    for (x, y) in words_a.remainder().iter().zip(words_b.remainder()) {
        d += (x ^ y).count_ones();
    }
    d
}

/// For each query row, its nearest train row and the second-nearest distance (`None` for every
/// row when `train` is empty).
///
/// # Panics
/// If the descriptor widths differ.
pub fn nearest_neighbours(query: ArrayView2<u8>, train: ArrayView2<u8>) -> Vec<Option<Neighbours>> {
    let scan = Scan::run(query, train, false);
    scan.rows.iter().map(|b| b.neighbours()).collect()
}

/// One-way nearest-neighbour matches, query to train, in query order. With `ratio = Some(r)`
/// only matches passing Lowe's test `distance < r * second_distance` are kept (a match without a
/// second neighbour passes).
///
/// # Panics
/// If the descriptor widths differ.
pub fn match_nn(query: ArrayView2<u8>, train: ArrayView2<u8>, ratio: Option<f32>) -> Vec<Match> {
    let scan = Scan::run(query, train, false);
    scan.rows
        .iter()
        .enumerate()
        .filter_map(|(q, b)| b.neighbours().map(|n| (q, n)))
        .filter(|(_, n)| passes_ratio(n, ratio))
        .map(|(q, n)| Match {
            query: q,
            train: n.best,
            distance: n.distance,
        })
        .collect()
}

/// Mutual nearest neighbours: query `q` and train `t` are matched when `t` is the nearest train
/// row of `q` and `q` the nearest query row of `t` (lowest index on ties), in query order. With
/// `ratio = Some(r)` the query-to-train match must also pass Lowe's ratio test (see
/// [`match_nn`]).
///
/// # Panics
/// If the descriptor widths differ.
pub fn mutual_nn(query: ArrayView2<u8>, train: ArrayView2<u8>, ratio: Option<f32>) -> Vec<Match> {
    let scan = Scan::run(query, train, true);
    scan.rows
        .iter()
        .enumerate()
        .filter_map(|(q, b)| b.neighbours().map(|n| (q, n)))
        .filter(|&(q, n)| scan.col_best_is(n.best, q) && passes_ratio(&n, ratio))
        .map(|(q, n)| Match {
            query: q,
            train: n.best,
            distance: n.distance,
        })
        .collect()
}

fn passes_ratio(n: &Neighbours, ratio: Option<f32>) -> bool {
    match (ratio, n.second_distance) {
        (Some(r), Some(second)) => (n.distance as f32) < r * second as f32,
        _ => true,
    }
}

fn le_word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Running best / second-best of one query row.
#[derive(Clone, Copy, Debug)]
struct Best {
    best: u32,
    d1: u32,
    d2: u32,
}

impl Best {
    const EMPTY: Best = Best {
        best: u32::MAX,
        d1: u32::MAX,
        d2: u32::MAX,
    };

    /// Strict comparisons keep the lowest index on ties (candidates come in increasing order).
    #[inline(always)]
    fn update(&mut self, d: u32, idx: u32) {
        if d < self.d1 {
            self.d2 = self.d1;
            self.d1 = d;
            self.best = idx;
        } else if d < self.d2 {
            self.d2 = d;
        }
    }

    fn neighbours(&self) -> Option<Neighbours> {
        (self.best != u32::MAX).then(|| Neighbours {
            best: self.best as usize,
            distance: self.d1,
            second_distance: (self.d2 != u32::MAX).then_some(self.d2),
        })
    }
}

/// Train rows per block: the distances of one query to a block are computed side by side
/// (one AVX-512 register of `u64` lanes).
const LANES: usize = 8;

/// Result of one scan: the best train rows of each query row, and (when asked) the nearest query
/// row of each train row (`cols`, padded to whole blocks).
struct Scan {
    rows: Vec<Best>,
    cols: Cols,
}

/// Nearest query row (lowest index on ties) and its distance, per train row, by block.
struct Cols {
    best: Vec<[u32; LANES]>,
    d1: Vec<[u32; LANES]>,
}

impl Scan {
    fn run(query: ArrayView2<u8>, train: ArrayView2<u8>, with_cols: bool) -> Scan {
        assert_eq!(
            query.ncols(),
            train.ncols(),
            "hamming: descriptor widths differ"
        );
        assert!(
            train.nrows() < u32::MAX as usize,
            "hamming: too many train rows"
        );
        assert!(
            query.nrows() < u32::MAX as usize,
            "hamming: too many query rows"
        );
        let words = query.ncols().div_ceil(8);
        let q = pack(query, words);
        let blocks = transpose(train, words);
        let nt = train.nrows();
        let mut rows = vec![Best::EMPTY; query.nrows()];
        let nblocks = if with_cols {
            blocks.len() / (words * LANES)
        } else {
            0
        };
        let mut cols = Cols {
            best: vec![[u32::MAX; LANES]; nblocks],
            d1: vec![[u32::MAX; LANES]; nblocks],
        };
        let k = Kernel {
            q: &q,
            blocks: &blocks,
            nt,
            rows: &mut rows,
            cols: &mut cols,
        };
        match words {
            1 => k.dispatch::<1>(),
            2 => k.dispatch::<2>(),
            4 => k.dispatch::<4>(),
            8 => k.dispatch::<8>(),
            _ => k.generic(words),
        }
        Scan { rows, cols }
    }

    /// Whether query `q` is the nearest query row of train row `t`.
    fn col_best_is(&self, t: usize, q: usize) -> bool {
        self.cols.best[t / LANES][t % LANES] as usize == q
    }
}

fn pack(m: ArrayView2<u8>, words: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(m.nrows() * words);
    let mut buf = vec![0u8; words * 8];
    for row in m.outer_iter() {
        for (b, &v) in buf.iter_mut().zip(row.iter()) {
            *b = v;
        }
        out.extend(buf.chunks_exact(8).map(le_word));
    }
    out
}

/// Train rows in blocks of `LANES`, word-major inside a block: word `w` of row `b * LANES + l`
/// is at `(b * words + w) * LANES + l`. The last block is padded with zero rows.
fn transpose(m: ArrayView2<u8>, words: usize) -> Vec<u64> {
    let packed = pack(m, words);
    let nblocks = m.nrows().div_ceil(LANES);
    let mut out = vec![0u64; nblocks * words * LANES];
    for (j, row) in packed.chunks_exact(words).enumerate() {
        let (b, l) = (j / LANES, j % LANES);
        for (w, &v) in row.iter().enumerate() {
            out[(b * words + w) * LANES + l] = v;
        }
    }
    out
}

/// One brute-force scan over all (query, train) pairs.
struct Kernel<'a> {
    q: &'a [u64],
    blocks: &'a [u64],
    nt: usize,
    rows: &'a mut [Best],
    cols: &'a mut Cols,
}

impl Kernel<'_> {
    /// Folds the distances of query `i` to block `b` into the row and column bests; lanes past
    /// the last train row are ignored.
    #[inline(always)]
    fn fold(row: &mut Best, cols: &mut Cols, i: usize, b: usize, nt: usize, mut d: [u32; LANES]) {
        let base = b * LANES;
        if nt - base < LANES {
            for x in &mut d[nt - base..] {
                *x = u32::MAX;
            }
        }
        if d.iter().any(|&x| x < row.d2) {
            for (l, &x) in d.iter().enumerate() {
                row.update(x, (base + l) as u32);
            }
        }
        if let (Some(cd), Some(cb)) = (cols.d1.get_mut(b), cols.best.get_mut(b)) {
            // Whole-array selects (rather than a loop of branches) keep this one vector compare.
            let mask: [bool; LANES] = std::array::from_fn(|l| d[l] < cd[l]);
            *cd = std::array::from_fn(|l| if mask[l] { d[l] } else { cd[l] });
            *cb = std::array::from_fn(|l| if mask[l] { i as u32 } else { cb[l] });
        }
    }

    /// Any width; distances for a block computed lane by lane.
    fn generic(self, words: usize) {
        for (i, (qi, row)) in self
            .q
            .chunks_exact(words)
            .zip(self.rows.iter_mut())
            .enumerate()
        {
            for (b, block) in self.blocks.chunks_exact(words * LANES).enumerate() {
                let mut d = [0u32; LANES];
                for (w, &qw) in qi.iter().enumerate() {
                    for (l, x) in d.iter_mut().enumerate() {
                        *x += (qw ^ block[w * LANES + l]).count_ones();
                    }
                }
                Self::fold(row, self.cols, i, b, self.nt, d);
            }
        }
    }

    /// A fixed width of `W` words: the `LANES` distances of a block are one vector of popcounts.
    #[inline(always)]
    fn fixed<const W: usize>(self) {
        for (i, (qi, row)) in self.q.chunks_exact(W).zip(self.rows.iter_mut()).enumerate() {
            for (b, block) in self.blocks.chunks_exact(W * LANES).enumerate() {
                let mut acc = [0u64; LANES];
                for w in 0..W {
                    let qw = qi[w];
                    let lanes = &block[w * LANES..(w + 1) * LANES];
                    for l in 0..LANES {
                        acc[l] += u64::from((qw ^ lanes[l]).count_ones());
                    }
                }
                Self::fold(row, self.cols, i, b, self.nt, acc.map(|x| x as u32));
            }
        }
    }

    fn dispatch<const W: usize>(self) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                // SAFETY: the CPU supports the features `fixed_avx512` is compiled for.
                return unsafe { self.fixed_avx512::<W>() };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: as above, for `fixed_avx2`.
                return unsafe { self.fixed_avx2::<W>() };
            }
        }
        self.fixed::<W>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vpopcntdq,avx512bw,avx512vl,avx2,popcnt")]
    fn fixed_avx512<const W: usize>(self) {
        self.fixed::<W>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    fn fixed_avx2<const W: usize>(self) {
        self.fixed::<W>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn random(n: usize, bytes: usize, seed: u64) -> Array2<u8> {
        let mut s = seed;
        Array2::from_shape_fn((n, bytes), |_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
    }

    fn brute(q: &Array2<u8>, t: &Array2<u8>) -> Vec<Option<Neighbours>> {
        q.outer_iter()
            .map(|qr| {
                let mut d: Vec<(u32, usize)> = t
                    .outer_iter()
                    .enumerate()
                    .map(|(j, tr)| (hamming(qr.as_slice().unwrap(), tr.as_slice().unwrap()), j))
                    .collect();
                d.sort();
                d.first().map(|&(d1, j)| Neighbours {
                    best: j,
                    distance: d1,
                    second_distance: d.get(1).map(|x| x.0),
                })
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_for_several_widths() {
        for bytes in [1, 7, 32, 33, 64, 100] {
            let q = random(37, bytes, 1);
            let t = random(300, bytes, 2);
            assert_eq!(
                nearest_neighbours(q.view(), t.view()),
                brute(&q, &t),
                "{bytes} bytes"
            );
        }
    }

    #[test]
    fn ties_pick_lowest_index_and_fail_ratio() {
        let q = Array2::from_shape_vec((1, 64), vec![0u8; 64]).unwrap();
        let mut t = Array2::<u8>::from_elem((3, 64), 0xff);
        t[[1, 0]] = 0x00;
        let row1 = t.row(1).to_owned();
        t.row_mut(2).assign(&row1);
        let n = nearest_neighbours(q.view(), t.view())[0].unwrap();
        assert_eq!((n.best, n.distance, n.second_distance), (1, 504, Some(504)));
        assert!(match_nn(q.view(), t.view(), Some(0.8)).is_empty());
        assert_eq!(
            match_nn(q.view(), t.view(), None),
            vec![Match {
                query: 0,
                train: 1,
                distance: 504
            }]
        );
    }

    #[test]
    fn mutual_nn_is_symmetric_and_consistent() {
        let q = random(200, 64, 3);
        let t = random(250, 64, 4);
        let m = mutual_nn(q.view(), t.view(), None);
        let back = mutual_nn(t.view(), q.view(), None);
        let mut swapped: Vec<Match> = back
            .iter()
            .map(|m| Match {
                query: m.train,
                train: m.query,
                distance: m.distance,
            })
            .collect();
        swapped.sort_by_key(|m| m.query);
        assert_eq!(m, swapped);
        let fwd = nearest_neighbours(q.view(), t.view());
        let rev = nearest_neighbours(t.view(), q.view());
        for x in &m {
            assert_eq!(fwd[x.query].unwrap().best, x.train);
            assert_eq!(rev[x.train].unwrap().best, x.query);
        }
        // Identical sets match themselves.
        let id = mutual_nn(q.view(), q.view(), None);
        assert_eq!(id.len(), 200);
        assert!(id.iter().all(|m| m.query == m.train && m.distance == 0));
    }

    #[test]
    fn empty_inputs() {
        let e = Array2::<u8>::zeros((0, 64));
        let q = random(3, 64, 5);
        assert_eq!(nearest_neighbours(q.view(), e.view()), vec![None; 3]);
        assert!(mutual_nn(q.view(), e.view(), Some(0.8)).is_empty());
        assert!(mutual_nn(e.view(), q.view(), None).is_empty());
        let one = random(1, 64, 6);
        assert_eq!(match_nn(q.view(), one.view(), Some(0.1)).len(), 3);
    }
}
