//! Lockergrid benchmarks (written next).
fn main() {}
