//! Following `EGRESS_HTTP_PROXY_DESTINATION_FILE`: a new content is parsed whole (off
//! the runtime); valid, it becomes the list the next requests decide with (open tunnels
//! and requests already decided keep going); invalid, the last list stays.

use std::path::Path;
use std::sync::Arc;

use super::Proxy;
use super::config::LIST;
use super::rules::{Rule, parse_rules};
use crate::config::lines::first_bad_line;
use crate::ops::list_reload::{self, Refused};
use crate::ops::metrics::HTTP_PROXY;
use crate::serve::list_watch::ListFile;
use crate::serve::off_runtime;
use crate::serve::shutdown::Shutdown;

/// Follows `file` (whose text `initial` is in use) until shutdown.
pub(super) async fn follow(file: ListFile, proxy: Arc<Proxy>, initial: String, shutdown: Shutdown) {
    let path = file.path().to_path_buf();
    let apply = move |text: String| {
        let (proxy, path) = (proxy.clone(), path.clone());
        async move {
            let parsed = off_runtime::run("list-parse", move || parse(&text, &path)).await;
            let rules = parsed.map_err(Refused::passing)??;
            let entries = rules.len();
            proxy.set_rules(rules);
            Ok(entries)
        }
    };
    list_reload::follow(file, HTTP_PROXY, initial, apply, shutdown).await;
}

/// The rules of the list `text` read from `path`, or why it is refused.
fn parse(text: &str, path: &Path) -> Result<Vec<Rule>, Refused> {
    parse_rules(text).map_err(|e| Refused {
        line: first_bad_line(text, |line| parse_rules(line).map(drop)),
        reason: LIST.blame_file(e, Some(path)).to_string(),
        retry: false,
    })
}
