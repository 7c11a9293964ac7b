//! Following a name target's addresses while the forwarder runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::destination::Target;
use super::forward::Forward;
use super::reach::dialable;
use super::{MIN_REFRESH, refresh_delay};
use crate::ops::metrics::METRICS;
use crate::serve::resolver::Resolver;
use crate::serve::shutdown::{Shutdown, requested};

/// Re-resolves the forwarder's name, following TTLs within [MIN_REFRESH, MAX_REFRESH],
/// until `stop` (the forward was replaced or removed, or the proxy stops); a failed
/// lookup keeps the last good addresses.
pub(super) async fn refresh(
    forward: Arc<Forward>,
    resolver: Resolver,
    mut delay: Duration,
    mut stop: Shutdown,
) {
    let Target::Name(name) = &forward.forwarder.target else {
        return;
    };
    loop {
        tokio::select! {
            _ = requested(&mut stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let lookup = tokio::select! {
            // A forward replaced or removed during a lookup must not record it.
            _ = requested(&mut stop) => return,
            lookup = resolver.lookup(name, forward.reach.families()) => lookup,
        };
        delay = match lookup {
            Ok(found) => {
                METRICS.resolved(name, true);
                let screened = dialable(
                    &found.addresses,
                    forward.forwarder.target_port,
                    &forward.reach,
                );
                if !screened.refused.is_empty() {
                    warn!(port = forward.forwarder.port, target = %name, skipped = %screened.describe_refused(), "skipping addresses of the answer");
                }
                let mut backends = forward.backends();
                if backends.replace(&screened.usable) {
                    let (addresses, left_out) = (backends.addresses(), backends.left_out());
                    drop(backends);
                    info!(port = forward.forwarder.port, target = %name, ?addresses, left_out, "backends changed");
                }
                refresh_delay(found.valid_until.saturating_duration_since(Instant::now()))
            }
            Err(reason) => {
                METRICS.resolved(name, false);
                let kept = forward.backends().addresses();
                warn!(port = forward.forwarder.port, target = %name, %reason, ?kept, "re-resolution failed; keeping the last addresses");
                MIN_REFRESH
            }
        };
    }
}
