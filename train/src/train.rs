//! The trainer (to be written).
