//! What every root test takes first: the check that it runs as root (it fails, never
//! skips, without), and its side of the machine-wide xtables lock.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Root tests must fail loudly, never skip, when not run as root.
pub fn require_root() {
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "\n\n*** THIS TEST NEEDS ROOT (euid is {euid}) ***\n\
             It builds network namespaces, macvlan links and iptables rules.\n\
             Run: sudo -E cargo test\n\n"
        );
    }
}

/// The xtables lock (/run/xtables.lock) is global to the machine, not per namespace.
/// Tests that hold it exclusively take the write side; every other root test the read side.
static XTABLES: RwLock<()> = RwLock::new(());

/// The read side of the xtables lock: any number of tests at once.
pub fn xtables_shared() -> RwLockReadGuard<'static, ()> {
    XTABLES.read().unwrap_or_else(|e| e.into_inner())
}

/// The write side of the xtables lock: this test alone.
pub fn xtables_exclusive() -> RwLockWriteGuard<'static, ()> {
    XTABLES.write().unwrap_or_else(|e| e.into_inner())
}
