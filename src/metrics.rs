//! Image quality metrics used across savl (placeholder, being written).
