//! Heterogeneous real-world degradation synthesis (to be written).
