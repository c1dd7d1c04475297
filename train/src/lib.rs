//! savl-train (placeholder)
