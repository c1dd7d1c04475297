//! A chain of element-wise ops over same-shape f32 tensors in one pass: a small [`Program`]
//! evaluated chunk by chunk (each intermediate a cache-sized chunk, never a whole tensor),
//! blocks of chunks on the pool.

use tract_linalg::multithread::Executor;
use tract_linalg::routines::Func;
use tract_onnx::prelude::TractResult;
use tract_onnx::tract_core::internal::ensure;

use super::try_for_each_slice_block;

/// Elements per chunk: every intermediate of one chunk stays in L1/L2.
const CHUNK: usize = 1024;

/// Elements per block of work handed to one thread.
const BLOCK: usize = 16 * CHUNK;

/// A one-argument op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `1 / (1 + e^-x)`, by tract's own kernel (bit-identical to tract's Sigmoid op).
    Sigmoid,
    /// `x` if `x ≥ 0`, else `alpha · x`, by tract's own kernel.
    LeakyRelu(f32),
}

/// A two-argument op, as tract computes it on f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a.max(b)`
    Max,
    /// `a.min(b)`
    Min,
}

/// One intermediate chunk, aligned for tract's SIMD kernels (which copy unaligned input first).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([f32; CHUNK]);

/// An operand of one chunk.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Slice(&'a [f32]),
    Scalar(f32),
}

/// `dst[i] = f(a[i], b[i])`, one loop per operand kind (so each is vectorised).
#[inline(always)]
fn binary(dst: &mut [f32], a: Arg, b: Arg, f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Arg::Slice(a), Arg::Slice(b)) => {
            for ((d, a), b) in dst.iter_mut().zip(a).zip(b) {
                *d = f(*a, *b);
            }
        }
        (Arg::Slice(a), Arg::Scalar(s)) => {
            for (d, a) in dst.iter_mut().zip(a) {
                *d = f(*a, s);
            }
        }
        (Arg::Scalar(s), Arg::Slice(b)) => {
            for (d, b) in dst.iter_mut().zip(b) {
                *d = f(s, *b);
            }
        }
        (Arg::Scalar(a), Arg::Scalar(b)) => dst.fill(f(a, b)),
    }
}

/// An argument of a [`Step`]: value `k` of the program (inputs first, then the steps' results
/// in order) or a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    /// Value `k`.
    Value(usize),
    /// The same constant for every element.
    Scalar(f32),
}

/// One op of a [`Program`]; its result is the program's next value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `op(value k)`.
    Unary(Unary, usize),
    /// `op(a, b)`.
    Binary(Binary, Operand, Operand),
}

/// Element-wise ops over `inputs` same-shape tensors: values `0..inputs` are the inputs, value
/// `inputs + k` the result of `steps[k]`; the result is the last step's.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// How many input tensors.
    pub inputs: usize,
    /// The ops in order; each refers to earlier values only.
    pub steps: Vec<Step>,
}

impl Program {
    /// The gate `x · sigmoid(g)` over inputs `[x, g]` (SAVL's modulation).
    pub fn gate() -> Program {
        Program {
            inputs: 2,
            steps: vec![
                Step::Unary(Unary::Sigmoid, 1),
                Step::Binary(Binary::Mul, Operand::Value(0), Operand::Value(2)),
            ],
        }
    }

    /// Checks that there is a step and that every step refers to earlier values only.
    pub fn validate(&self) -> TractResult<()> {
        ensure!(!self.steps.is_empty(), "element-wise program without steps");
        for (k, step) in self.steps.iter().enumerate() {
            let known = self.inputs + k;
            let ok = |o: &Operand| match o {
                Operand::Value(v) => *v < known,
                Operand::Scalar(_) => true,
            };
            let fine = match step {
                Step::Unary(_, v) => *v < known,
                Step::Binary(_, a, b) => ok(a) && ok(b),
            };
            ensure!(
                fine,
                "element-wise step {k} refers to a later value: {step:?}"
            );
        }
        Ok(())
    }
}

/// Runs `program` over `inputs` (each `out.len()` long) into `out`. Each element's result is
/// computed by the same f32 operations, in the same order, as the unfused ops (tract's own
/// kernels for the unary ones), so it is bit-identical to them. With a multi-thread
/// `executor`, blocks of 16 384 elements run on its pool.
pub fn run(
    program: &Program,
    inputs: &[&[f32]],
    out: &mut [f32],
    executor: &Executor,
) -> TractResult<()> {
    run_with(program, inputs, None, out, executor)
}

/// [`run`] in place: input `io` is `data` itself (whatever `inputs[io]` holds is not read), and
/// `data` is overwritten with the result.
pub fn run_in_place(
    program: &Program,
    inputs: &[&[f32]],
    io: usize,
    data: &mut [f32],
    executor: &Executor,
) -> TractResult<()> {
    run_with(program, inputs, Some(io), data, executor)
}

fn run_with(
    program: &Program,
    inputs: &[&[f32]],
    io: Option<usize>,
    out: &mut [f32],
    executor: &Executor,
) -> TractResult<()> {
    program.validate()?;
    ensure!(
        inputs.len() == program.inputs && io.is_none_or(|k| k < inputs.len()),
        "element-wise program: wrong input count"
    );
    ensure!(
        inputs
            .iter()
            .enumerate()
            .all(|(k, x)| Some(k) == io || x.len() == out.len()),
        "element-wise program: lengths differ"
    );
    let sigmoid = Func::Sigmoid.ew_f32()?;
    let leaky = Func::LeakyRelu.ew_f32_param()?;
    let (ni, steps) = (program.inputs, program.steps.len());
    try_for_each_slice_block(out, BLOCK, executor, |start, block| {
        let mut scratch = vec![Chunk([0f32; CHUNK]); steps];
        for (c, oc) in block.chunks_mut(CHUNK).enumerate() {
            let (c0, n) = (start + c * CHUNK, oc.len());
            for (k, step) in program.steps.iter().enumerate() {
                let (done, rest) = scratch.split_at_mut(k);
                // The in-place input is read from the output chunk, which is only written once
                // every step of the chunk is done.
                let value = |v: usize| -> &[f32] {
                    if Some(v) == io {
                        &*oc
                    } else if v < ni {
                        &inputs[v][c0..c0 + n]
                    } else {
                        &done[v - ni].0[..n]
                    }
                };
                let operand = |o: Operand| match o {
                    Operand::Value(v) => Arg::Slice(value(v)),
                    Operand::Scalar(s) => Arg::Scalar(s),
                };
                let dst = &mut rest[0].0[..n];
                match *step {
                    Step::Unary(op, v) => {
                        dst.copy_from_slice(value(v));
                        match op {
                            Unary::Sigmoid => sigmoid.run(dst)?,
                            Unary::LeakyRelu(alpha) => leaky.run_with_params(dst, alpha)?,
                        }
                    }
                    Step::Binary(op, a, b) => {
                        let (a, b) = (operand(a), operand(b));
                        match op {
                            Binary::Add => binary(dst, a, b, |a, b| a + b),
                            Binary::Sub => binary(dst, a, b, |a, b| a - b),
                            Binary::Mul => binary(dst, a, b, |a, b| a * b),
                            Binary::Max => binary(dst, a, b, f32::max),
                            Binary::Min => binary(dst, a, b, f32::min),
                        }
                    }
                }
            }
            oc.copy_from_slice(&scratch[steps - 1].0[..n]);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program run op by op over whole tensors with tract's kernels, as tract runs the
    /// unfused graph.
    fn op_by_op(program: &Program, inputs: &[Vec<f32>]) -> Vec<f32> {
        let mut values: Vec<Vec<f32>> = inputs.to_vec();
        let n = inputs[0].len();
        let get = |values: &[Vec<f32>], o: Operand| match o {
            Operand::Value(v) => values[v].clone(),
            Operand::Scalar(s) => vec![s; n],
        };
        for step in &program.steps {
            let r = match *step {
                Step::Unary(Unary::Sigmoid, v) => {
                    let mut x = values[v].clone();
                    Func::Sigmoid.ew_f32().unwrap().run(&mut x).unwrap();
                    x
                }
                Step::Unary(Unary::LeakyRelu(alpha), v) => values[v]
                    .iter()
                    .map(|&x| if x >= 0.0 { x } else { alpha * x })
                    .collect(),
                Step::Binary(op, a, b) => {
                    let (a, b) = (get(&values, a), get(&values, b));
                    a.iter()
                        .zip(&b)
                        .map(|(&a, &b)| match op {
                            Binary::Add => a + b,
                            Binary::Sub => a - b,
                            Binary::Mul => a * b,
                            Binary::Max => {
                                if a > b {
                                    a
                                } else {
                                    b
                                }
                            }
                            Binary::Min => {
                                if a < b {
                                    a
                                } else {
                                    b
                                }
                            }
                        })
                        .collect()
                }
            };
            values.push(r);
        }
        values.pop().unwrap()
    }

    /// The gate, SPAN's attention `(t + x) · (sigmoid(t) − 0.5)`, a clip, a leaky ReLU and a
    /// constant first operand, over lengths that end mid-chunk and mid-block, on one thread and a pool:
    /// bit for bit the op-by-op result.
    #[test]
    fn equals_op_by_op_on_any_pool() {
        use Operand::{Scalar, Value};
        let programs = [
            Program::gate(),
            Program {
                inputs: 2,
                steps: vec![
                    Step::Binary(Binary::Add, Value(0), Value(1)),
                    Step::Unary(Unary::Sigmoid, 0),
                    Step::Binary(Binary::Sub, Value(3), Scalar(0.5)),
                    Step::Binary(Binary::Mul, Value(2), Value(4)),
                ],
            },
            Program {
                inputs: 1,
                steps: vec![
                    Step::Binary(Binary::Max, Value(0), Scalar(-1.0)),
                    Step::Binary(Binary::Min, Value(1), Scalar(1.0)),
                ],
            },
            Program {
                inputs: 2,
                steps: vec![
                    Step::Unary(Unary::LeakyRelu(0.2), 1),
                    Step::Binary(Binary::Sub, Scalar(2.0), Value(2)),
                    Step::Binary(Binary::Mul, Value(3), Value(0)),
                ],
            },
        ];
        for program in &programs {
            for n in [1, CHUNK - 1, BLOCK, 3 * BLOCK + 517] {
                let inputs: Vec<Vec<f32>> = (0..program.inputs)
                    .map(|k| {
                        (0..n)
                            .map(|i| ((i * (k + 3)) % 101) as f32 * 0.07 - 3.5)
                            .collect()
                    })
                    .collect();
                let want = op_by_op(program, &inputs);
                let refs: Vec<&[f32]> = inputs.iter().map(|x| x.as_slice()).collect();
                for ex in [Executor::SingleThread, Executor::multithread(3)] {
                    let mut got = vec![f32::NAN; n];
                    run(program, &refs, &mut got, &ex).unwrap();
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{program:?}, n = {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn forward_references_and_bad_inputs_are_errors() {
        let bad = Program {
            inputs: 1,
            steps: vec![Step::Binary(
                Binary::Add,
                Operand::Value(0),
                Operand::Value(1),
            )],
        };
        assert!(bad.validate().is_err());
        assert!(Program {
            inputs: 1,
            steps: vec![]
        }
        .validate()
        .is_err());
        let ok = Program {
            inputs: 2,
            steps: vec![Step::Unary(Unary::Sigmoid, 1)],
        };
        let mut out = vec![0f32; 4];
        let ex = Executor::SingleThread;
        assert!(
            run(&ok, &[&[0.0; 4]], &mut out, &ex).is_err(),
            "one input of two"
        );
        assert!(
            run(&ok, &[&[0.0; 4], &[0.0; 3]], &mut out, &ex).is_err(),
            "lengths differ"
        );
        run(&ok, &[&[0.0; 4], &[0.0; 4]], &mut out, &ex).unwrap();
        assert_eq!(out, [0.5; 4]);
    }
}
