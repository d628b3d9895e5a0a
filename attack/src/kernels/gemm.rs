//! The `gemm` crate's f32 matrix product with named strided operands, shared by the hand-written
//! convolutions ([`crate::kernels::conv3x3`], [`crate::kernels::up2x2`]).

/// A matrix operand of [`matmul`]: its first element and the distances, in elements, between
/// neighbouring columns and rows.
#[derive(Clone, Copy)]
pub(crate) struct Strided<P> {
    ptr: P,
    col_stride: isize,
    row_stride: isize,
}

impl<P> Strided<P> {
    pub(crate) fn new(ptr: P, col_stride: usize, row_stride: usize) -> Self {
        Self {
            ptr,
            col_stride: col_stride as isize,
            row_stride: row_stride as isize,
        }
    }
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, or `dst +=` that product when `accumulate`: the
/// `gemm` crate's f32 GEMM on the calling thread (the callers already run one task per thread).
///
/// # Safety
/// Every element the shapes and strides address lies inside its operand's buffer, and nothing
/// else reads or writes `dst`'s elements meanwhile.
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Strided<*mut f32>,
    accumulate: bool,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// An output buffer shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);

// SAFETY: the tasks holding a `SharedOut` write disjoint elements, and the buffer outlives them
// (each user says how).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The element at `offset`.
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers pass offsets inside the buffer.
        unsafe { self.0.add(offset) }
    }
}
