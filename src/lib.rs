//! savl runtime (placeholder)
