//! savl-quantize (placeholder)
