//! Following `EGRESS_HTTP_PROXY_DESTINATION_FILE`: a new content is parsed whole;
//! valid, it becomes the list the next requests decide with (open tunnels and requests
//! already decided keep going); invalid, the last list stays.

use std::sync::Arc;

use super::Proxy;
use super::config::LIST;
use super::rules::parse_rules;
use crate::config::lines::first_bad_line;
use crate::ops::list_reload::{self, Refused};
use crate::ops::metrics::HTTP_PROXY;
use crate::serve::list_watch::ListFile;
use crate::serve::shutdown::Shutdown;

/// Follows `file` (whose text `initial` is in use) until shutdown.
pub(super) async fn follow(file: ListFile, proxy: Arc<Proxy>, initial: String, shutdown: Shutdown) {
    let path = file.path().to_path_buf();
    let apply = move |text: String| {
        let outcome = match parse_rules(&text) {
            Ok(rules) => {
                let entries = rules.len();
                proxy.set_rules(rules);
                Ok(entries)
            }
            Err(e) => Err(Refused {
                line: first_bad_line(&text, |line| parse_rules(line).map(drop)),
                reason: LIST.blame_file(e, Some(&path)).to_string(),
                retry: false,
            }),
        };
        std::future::ready(outcome)
    };
    list_reload::follow(file, HTTP_PROXY, initial, apply, shutdown).await;
}
