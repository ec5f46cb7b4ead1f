//! The core's own memory accounting: what a connection holds, counted by its owner.

/// The heap a vector of plain elements holds: its capacity, not its length, is what is
/// allocated.
pub fn heap_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}
