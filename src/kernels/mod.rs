//! Kernels over plain slices: what savl computes faster than tract's generic ops. No tract
//! graph types here (only tract's thread pool, [`Executor`], to run blocks on); the tract ops
//! that call them are in [`crate::ops`], the load-time rewrites that insert those ops in
//! [`crate::rewrites`].
//!
//! - [`winograd`]: 3×3 / stride 1 / pad 1 convolution by Winograd F(2×2) or F(4×4).
//! - [`pointwise`]: 1×1 convolution over concatenated inputs.
//! - [`elementwise`]: a chain of element-wise ops (SAVL's gate, SPAN's attention, clips) in one
//!   pass.
//! - [`shuffle`]: pixel shuffle with the nearest-upsampled skip added in the same pass.
//! - blocks of work on the pool: `for_each_block` and `OutPtr` (crate-private).

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::TractResult;

pub mod elementwise;
pub mod pointwise;
pub mod shuffle;
pub mod winograd;

thread_local! {
    static PORTABLE_PRODUCTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the kernels called from this thread on their portable products (the `gemm`
/// crate: the path of CPUs without AVX-512F), for tests on a CPU that has it.
#[doc(hidden)]
pub fn with_portable_products<R>(f: impl FnOnce() -> R) -> R {
    let previous = PORTABLE_PRODUCTS.replace(true);
    let result = f();
    PORTABLE_PRODUCTS.set(previous);
    result
}

/// Whether this thread is inside [`with_portable_products`].
pub(crate) fn portable_products() -> bool {
    PORTABLE_PRODUCTS.get()
}

#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
impl OutPtr {
    /// The `len` elements from element `start`.
    ///
    /// # Safety
    /// They must lie inside the buffer, which must outlive the slice, and no other live slice may
    /// overlap them.
    pub(crate) unsafe fn slice_mut<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        // SAFETY: the caller's contract above.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

// SAFETY: every kernel that shares an `OutPtr` has its blocks write disjoint element ranges (see
// each kernel's block function), and the buffer outlives the parallel scope.
unsafe impl Send for OutPtr {}
// SAFETY: as above; the pointer is only used to build disjoint slices.
unsafe impl Sync for OutPtr {}

/// Runs `f(start, block)` over `data` cut into blocks of `block_len` elements (the last one
/// shorter), `start` the index of the block's first element, on the pool of a multi-thread
/// `executor`; the first error any call returned.
pub(crate) fn try_for_each_slice_block(
    data: &mut [f32],
    block_len: usize,
    executor: &Executor,
    f: impl Fn(usize, &mut [f32]) -> TractResult<()> + Sync,
) -> TractResult<()> {
    let n = data.len();
    let out = OutPtr(data.as_mut_ptr());
    let error = std::sync::Mutex::new(None);
    for_each_block(
        executor,
        n.div_ceil(block_len),
        || (),
        |_, b| {
            let start = b * block_len;
            // SAFETY: block `b` alone touches elements `start .. start + len` of `data`, which is
            // borrowed mutably for the whole call.
            let block = unsafe { out.slice_mut(start, block_len.min(n - start)) };
            if let Err(e) = f(start, block) {
                error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        },
    );
    match error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `block(scratch, b)` for `b` in `0..blocks`. With a multi-thread `executor` (and more than
/// one block) the blocks are handed out one by one on its pool (work stealing), each rayon job
/// with its own scratch from `scratch`; otherwise they run in order on one scratch.
pub(crate) fn for_each_block<S>(
    executor: &Executor,
    blocks: usize,
    scratch: impl Fn() -> S + Sync + Send,
    block: impl Fn(&mut S, usize) + Sync + Send,
) {
    if let Executor::MultiThread(pool) = executor {
        if pool.current_num_threads() > 1 && blocks > 1 {
            use rayon::prelude::*;
            pool.install(|| (0..blocks).into_par_iter().for_each_init(&scratch, &block));
            return;
        }
    }
    let mut s = scratch();
    for b in 0..blocks {
        block(&mut s, b);
    }
}
