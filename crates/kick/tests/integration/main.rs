//! Integration tests of kick.
