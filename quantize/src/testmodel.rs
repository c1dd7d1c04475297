//! The quantizer's test model, for tests, examples and the ONNX check script: the shared
//! synthetic model ([`savl_contract::testmodel::TestModel`]) with every op family of the product
//! graph (`product_ops`: Conv 3×3/1×1, LeakyRelu, Sigmoid·Mul gates, Exp·Mul modulation,
//! ReduceMean, Sub/Div/Clip, Split, Concat, DepthToSpace (CRD) and a nearest-Resize skip with
//! FLOAT scales), as tract's ONNX messages.

use std::path::Path;

pub use savl_contract::testmodel::TestModel;
use tract_onnx::pb;

/// The small model the tests quantize: 16 channels, 4 body convs, `mu` of 4 channels.
pub fn small() -> TestModel {
    TestModel {
        channels: 16,
        seed: 7,
        product_ops: true,
        ..TestModel::default()
    }
}

/// `m` as tract's ONNX messages.
pub fn proto(m: &TestModel) -> pb::ModelProto {
    crate::onnx_graph::decode_model(&m.onnx_bytes(), Path::new("testmodel"))
        .expect("the test model decodes")
}
