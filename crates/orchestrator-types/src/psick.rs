//! The result document of the `psick::puppet_agent` task (being written).
