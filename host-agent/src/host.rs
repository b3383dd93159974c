//! Facts about the machine hostctl runs on, for capacity checks.

/// Total physical memory in bytes; 0 when it cannot be read (the capacity
/// check then says nothing rather than guessing).
pub fn total_memory_bytes() -> u64 {
    match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            sys.total_memory()
        }
        Err(_) => 0,
    }
}
