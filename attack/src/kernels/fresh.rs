//! Output buffers the kernels write in full, allocated without zeroing them first: a zeroed
//! `vec![0.0; n]` is a `memset` over memory that is then overwritten anyway, and with freed memory
//! kept in the process ([`crate::kernels::allocator`]) the allocator cannot hand out pages the
//! kernel already zeroed.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A vector of `len` floats whose `i`-th chunk of `chunk` floats (the last may be shorter) holds
/// the values of `values(i)`, the chunks written in parallel on rayon's threads.
///
/// # Panics
/// If an iterator's length differs from its chunk's.
pub(crate) fn par_chunks_from<I>(
    len: usize,
    chunk: usize,
    values: impl Fn(usize) -> I + Sync,
) -> Vec<f32>
where
    I: ExactSizeIterator<Item = f32>,
{
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, dst)| write_all(dst, values(i)));
    // SAFETY: every chunk of the first `len` elements was written in full above (`write_all`
    // panics otherwise, and a panic leaves `out` empty).
    unsafe { out.set_len(len) };
    out
}

/// Writes `values` into `dst`, which it must fill exactly.
fn write_all(dst: &mut [MaybeUninit<f32>], values: impl ExactSizeIterator<Item = f32>) {
    assert_eq!(values.len(), dst.len(), "a chunk's values do not fill it");
    for (d, v) in dst.iter_mut().zip(values) {
        d.write(v);
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` floats, kept from call to call
/// (zeroed only where it grows): what earlier calls left in it stays, so `f` must write what it
/// reads. Not re-entrant: `f` must not call it again.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|buf| {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}

/// `Σ_{i < count} part(i)`, elementwise, for parts of `len` floats computed in parallel on
/// rayon's threads (zeros when `count` is 0): a weight gradient summed over a batch's images.
pub(crate) fn par_sum(
    count: usize,
    len: usize,
    part: impl Fn(usize) -> Vec<f32> + Sync + Send,
) -> Vec<f32> {
    (0..count)
        .into_par_iter()
        .map(part)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0f32; len])
}
