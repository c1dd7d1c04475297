//! savl's own typed tract ops, each a thin wrapper that checks shapes and calls a kernel of
//! [`crate::kernels`] on tract's current executor. They are inserted by [`crate::rewrites`] at
//! model load and never appear in an ONNX file.

mod elementwise;
mod pixel_shuffle;
mod pointwise_conv;
mod sigmoid_mul;
mod winograd_conv;

pub use elementwise::Elementwise;
pub use pixel_shuffle::PixelShuffle;
pub use pointwise_conv::PointwiseConv;
pub use sigmoid_mul::SigmoidMul;
pub use winograd_conv::WinogradConv;
