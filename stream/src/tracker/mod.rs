//! The driver tracker (being written).
