//! Receivers (being written).
