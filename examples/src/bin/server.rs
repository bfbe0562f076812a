//! The example receiver (being written).
fn main() {}
