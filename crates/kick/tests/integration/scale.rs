//! Scale.
