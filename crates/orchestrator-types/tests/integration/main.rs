//! Integration tests of the wire types against responses captured from real
//! PE servers and quoted in the project's API reference.

mod psick_params;
mod wire;
