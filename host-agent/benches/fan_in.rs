//! Host fan-in benchmark (being written).
fn main() {}
