//! Placeholder until the gate cost benchmark lands.

fn main() {}
