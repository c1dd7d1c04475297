//! What savl's own tract ops share: the load-time rewrite loop that inserts them
//! ([`rewrite_until_done`]), and the way their kernels run blocks of work on tract's thread pool
//! ([`for_each_block`], [`OutPtr`]). The ops are in `modulate`, `winograd` and `pointwise`.

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Applies the patch `one` finds until it finds none; returns how many were applied. After the
/// first, the model is decluttered once more, which drops the nodes the patches left unused.
/// `what` names the rewrite in the error when it does not converge.
pub(crate) fn rewrite_until_done(
    model: &mut TypedModel,
    what: &str,
    mut one: impl FnMut(&TypedModel) -> TractResult<Option<TypedModelPatch>>,
) -> TractResult<usize> {
    let mut n = 0;
    while let Some(patch) = one(model)? {
        patch.apply(model)?;
        n += 1;
        ensure!(n < 10_000, "{what} rewrite does not converge");
    }
    if n > 0 {
        *model = std::mem::take(model).into_decluttered()?;
    }
    Ok(n)
}

/// The output buffer of a kernel whose blocks write disjoint parts of it from several threads.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: every kernel that shares an `OutPtr` has its blocks write disjoint element ranges (see
// each kernel's block function), and the buffer outlives the parallel scope.
unsafe impl Send for OutPtr {}
// SAFETY: as above; the pointer is only used to build disjoint slices.
unsafe impl Sync for OutPtr {}

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
