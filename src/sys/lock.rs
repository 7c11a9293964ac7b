//! A lock scoped to a network namespace.
//!
//! The lock is the name of an abstract unix socket: the kernel keeps those names per
//! network namespace and frees one when the socket holding it is closed, also when its
//! process dies. No file is involved, so it works on a read-only root filesystem and
//! never goes stale.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, socket};

use crate::error::{Error, Result};
use crate::sys::netns::Netns;

/// How often a waiting [`NamespaceLock::acquire`] tries again.
const RETRY: Duration = Duration::from_millis(20);

/// A held lock; released on drop.
#[derive(Debug)]
pub struct NamespaceLock {
    _socket: OwnedFd,
}

impl NamespaceLock {
    /// Takes the lock `name` of this network namespace, waiting at most `wait` for
    /// another holder to release it; `None` when it is still held after that.
    pub async fn acquire(ns: &Netns, name: &str, wait: Duration) -> Result<Option<Self>> {
        let address = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|e| Error::io(format!("naming lock @{name}"), e.into()))?;
        // CLOEXEC: the helpers this process starts must not hold the lock after it exits.
        // Abstract names belong to the namespace the socket was created in.
        let socket = ns
            .run(|| {
                socket(
                    AddressFamily::Unix,
                    SockType::Datagram,
                    SockFlag::SOCK_CLOEXEC,
                    None,
                )
            })?
            .map_err(|e| Error::io(format!("creating the socket for lock @{name}"), e.into()))?;
        let end = Instant::now() + wait;
        loop {
            match bind(socket.as_raw_fd(), &address) {
                Ok(()) => return Ok(Some(NamespaceLock { _socket: socket })),
                Err(Errno::EADDRINUSE) if Instant::now() < end => tokio::time::sleep(RETRY).await,
                Err(Errno::EADDRINUSE) => return Ok(None),
                Err(e) => return Err(Error::io(format!("taking lock @{name}"), e.into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> Netns {
        Netns::current().unwrap()
    }

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first_then_gets_the_lock() {
        let name = format!("egress-router-test-{}", std::process::id());
        let first = NamespaceLock::acquire(&here(), &name, Duration::ZERO)
            .await
            .unwrap();
        assert!(first.is_some());
        let started = Instant::now();
        let second = NamespaceLock::acquire(&here(), &name, Duration::from_millis(100))
            .await
            .unwrap();
        assert!(second.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));
        let released = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(first);
        });
        let third = NamespaceLock::acquire(&here(), &name, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(third.is_some());
        released.await.unwrap();
    }
}
