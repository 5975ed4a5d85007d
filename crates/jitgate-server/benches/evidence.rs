//! Evidence benchmarks (written below).
fn main() {}
