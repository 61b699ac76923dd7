//! Integration tests of the orchestrator client against local servers only.
