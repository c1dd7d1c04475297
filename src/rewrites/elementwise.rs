//! [`fuse_elementwise`]: tract runs each element-wise op as a full pass over its tensor, on one
//! thread (it fuses chains of binary ops, but not across a Sigmoid). SPAN's attention
//! `(t + x) · (sigmoid(t) − 0.5)` is three such passes per block. This rewrite turns every tree
//! of element-wise ops (Sigmoid, LeakyRelu, Add, Sub, Mul, Max, Min) over same-shape f32
//! tensors and scalar constants, whose inner results feed nothing else, into one [`Elementwise`]
//! op: one pass, chunk by chunk, on the pool, bit-identical to tract. An operand that
//! broadcasts (a per-channel bias, say) stops the tree there, and the op that has it stays
//! tract's. `SAVL_DISABLE_ELEMENTWISE=1` turns it off ([`enabled_by_env`]).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math::{Add, Max, Min, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{LeakyRelu, Sigmoid};

use super::{env_switch_off, rewrite_until_done};
use crate::kernels::elementwise::{Binary, Operand, Program, Step, Unary};
use crate::ops::Elementwise;

/// Whether the rewrite is on: true unless `SAVL_DISABLE_ELEMENTWISE` is set to anything but `0`
/// or the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    env_switch_off("SAVL_DISABLE_ELEMENTWISE")
}

/// Replaces every element-wise tree with one [`Elementwise`] op; returns how many.
pub fn fuse_elementwise(model: &mut TypedModel) -> TractResult<usize> {
    rewrite_until_done(model, "element-wise", fuse_one)
}

/// What an f32 element-wise node computes, if savl's op can.
enum Kind {
    Unary(Unary),
    Binary(Binary),
}

fn kind(model: &TypedModel, node: &TypedNode) -> Option<Kind> {
    let f32t = f32::datum_type();
    if node.outputs.len() != 1 || node.outputs[0].fact.datum_type != f32t {
        return None;
    }
    if let Some(op) = node.op_as::<ElementWiseOp>() {
        if op.1.is_some() || model.outlet_fact(node.inputs[0]).ok()?.datum_type != f32t {
            return None;
        }
        if op.0.is::<Sigmoid>() {
            return Some(Kind::Unary(Unary::Sigmoid));
        }
        let alpha = op.0.downcast_ref::<LeakyRelu>()?.alpha;
        return Some(Kind::Unary(Unary::LeakyRelu(alpha)));
    }
    let op = node.op_as::<TypedBinOp>()?;
    if op.1.is_some() || node.inputs.len() != 2 {
        return None;
    }
    let mini = &op.0;
    let b = if mini.is::<Add>() {
        Binary::Add
    } else if mini.is::<Sub>() {
        Binary::Sub
    } else if mini.is::<Mul>() {
        Binary::Mul
    } else if mini.is::<Max>() {
        Binary::Max
    } else if mini.is::<Min>() {
        Binary::Min
    } else {
        return None;
    };
    Some(Kind::Binary(b))
}

/// A tree being collected: its leaves (tensor inputs) and steps, operands numbered
/// provisionally ([`Slot`]) until the leaf count is known.
#[derive(Default)]
struct Tree {
    leaves: Vec<OutletId>,
    steps: Vec<(Kind, [Slot; 2])>,
}

#[derive(Clone, Copy)]
enum Slot {
    Leaf(usize),
    Step(usize),
    Scalar(f32),
}

impl Tree {
    /// `outlet` as an operand of the tree rooted at shape `shape`: a scalar constant, an
    /// absorbed element-wise node, or a leaf; `None` when it broadcasts.
    fn operand(&mut self, model: &TypedModel, outlet: OutletId, shape: &ShapeFact) -> Option<Slot> {
        let fact = model.outlet_fact(outlet).ok()?;
        if fact.datum_type != f32::datum_type() {
            return None;
        }
        if let Some(k) = &fact.konst {
            if k.len() == 1 && fact.rank() <= shape.rank() {
                let v = k.cast_to_scalar::<f32>().ok()?;
                return Some(Slot::Scalar(v));
            }
        }
        if &fact.shape != shape {
            return None;
        }
        let node = model.node(outlet.node);
        let single_use =
            model.outlet_successors(outlet).len() == 1 && !model.outputs.contains(&outlet);
        if single_use {
            let saved = (self.leaves.len(), self.steps.len());
            if let Some(slot) = self.node(model, node, shape) {
                return Some(slot);
            }
            self.leaves.truncate(saved.0);
            self.steps.truncate(saved.1);
        }
        let ix = self
            .leaves
            .iter()
            .position(|l| *l == outlet)
            .unwrap_or_else(|| {
                self.leaves.push(outlet);
                self.leaves.len() - 1
            });
        Some(Slot::Leaf(ix))
    }

    /// `node` absorbed into the tree, its operands first.
    fn node(&mut self, model: &TypedModel, node: &TypedNode, shape: &ShapeFact) -> Option<Slot> {
        let k = kind(model, node)?;
        let a = self.operand(model, node.inputs[0], shape)?;
        let b = match k {
            Kind::Unary(_) => a,
            Kind::Binary(_) => self.operand(model, node.inputs[1], shape)?,
        };
        self.steps.push((k, [a, b]));
        Some(Slot::Step(self.steps.len() - 1))
    }

    /// The program, or `None` for a unary op of a constant (which tract's declutter folds
    /// before this ever runs).
    fn program(&self) -> Option<Program> {
        let inputs = self.leaves.len();
        let value = |s: Slot| match s {
            Slot::Leaf(i) => Operand::Value(i),
            Slot::Step(j) => Operand::Value(inputs + j),
            Slot::Scalar(v) => Operand::Scalar(v),
        };
        let steps = self
            .steps
            .iter()
            .map(|(k, [a, b])| match k {
                Kind::Unary(u) => match value(*a) {
                    Operand::Value(v) => Some(Step::Unary(*u, v)),
                    Operand::Scalar(_) => None,
                },
                Kind::Binary(op) => Some(Step::Binary(*op, value(*a), value(*b))),
            })
            .collect::<Option<_>>()?;
        Some(Program { inputs, steps })
    }
}

/// Whether `node`'s only consumer is an element-wise node of the same shape (which then
/// absorbs it, so the tree is rewritten from there).
fn feeds_a_tree(model: &TypedModel, node: &TypedNode) -> bool {
    let outlet = node.id.into();
    let [succ] = model.outlet_successors(outlet) else {
        return false;
    };
    if model.outputs.contains(&outlet) {
        return false;
    }
    let next = model.node(succ.node);
    kind(model, next).is_some() && next.outputs[0].fact.shape == node.outputs[0].fact.shape
}

fn fuse_one(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        if kind(model, node).is_none() || feeds_a_tree(model, node) {
            continue;
        }
        let shape = node.outputs[0].fact.shape.clone();
        let mut tree = Tree::default();
        if tree.node(model, node, &shape).is_none() || tree.leaves.is_empty() {
            continue;
        }
        let Some(program) = tree.program() else {
            continue;
        };
        let mut patch = TypedModelPatch::new("savl element-wise");
        let inputs = tree
            .leaves
            .iter()
            .map(|l| patch.tap_model(model, *l))
            .collect::<TractResult<Vec<_>>>()?;
        let name = format!("{}.elementwise", node.name);
        let out = patch.wire_node(name, Elementwise { program }, &inputs)?[0];
        patch.shunt_outside(model, id.into(), out)?;
        return Ok(Some(patch));
    }
    Ok(None)
}
