//! ONNX export of the inference path (to be written).
