//! The trigger tool (being written).
fn main() {}
