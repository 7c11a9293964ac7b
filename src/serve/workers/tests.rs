use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::serve::listener::bind_all;

/// Each worker answers every connection with its thread's name and closes it, until
/// `stop` turns.
fn name_server(
    stop: watch::Receiver<bool>,
    ended: Arc<AtomicUsize>,
) -> impl Fn(usize, Vec<TcpListener>) -> std::pin::Pin<Box<dyn Future<Output = ()>>> + Clone + Send
{
    move |_, listeners| {
        let (mut stop, ended) = (stop.clone(), ended.clone());
        Box::pin(async move {
            let [listener] = <[TcpListener; 1]>::try_from(listeners).expect("one listener");
            loop {
                tokio::select! {
                    _ = requested(&mut stop) => break,
                    Ok((mut stream, _)) = listener.accept() => {
                        let name = std::thread::current().name().unwrap_or("?").to_string();
                        tokio::spawn(async move { stream.write_all(name.as_bytes()).await });
                    }
                }
            }
            ended.fetch_add(1, Ordering::SeqCst);
        })
    }
}

#[tokio::test]
async fn connections_spread_over_every_worker_and_drain_runs_after_all_stop_accepting() {
    let sockets = bind_all(0, 3).expect("three sockets on one port");
    let port = sockets[0].local_addr().unwrap().port();
    assert!(
        sockets
            .iter()
            .all(|s| s.local_addr().unwrap().port() == port)
    );
    let (stop, stopped) = watch::channel(false);
    let ended = Arc::new(AtomicUsize::new(0));
    let ended_at_drain = Arc::new(AtomicUsize::new(usize::MAX));
    let drain = {
        let (ended, seen) = (ended.clone(), ended_at_drain.clone());
        async move { seen.store(ended.load(Ordering::SeqCst), Ordering::SeqCst) }
    };
    let per_worker = sockets.into_iter().map(|s| vec![s]).collect();
    let serve = serve_on_every_core(per_worker, name_server(stopped, ended.clone()), drain);
    let clients = async {
        let mut names = BTreeSet::new();
        for _ in 0..64 {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut name = String::new();
            stream.read_to_string(&mut name).await.unwrap();
            names.insert(name);
        }
        stop.send_replace(true);
        names
    };
    let (served, names) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(serve, clients)
    })
    .await
    .expect("the workers stop once asked");
    served.expect("every worker started");
    assert!(
        names.contains("worker-1") && names.contains("worker-2"),
        "64 connections reached both other workers: {names:?}"
    );
    assert_eq!(names.len(), 3, "and the calling thread's: {names:?}");
    assert_eq!(
        ended_at_drain.load(Ordering::SeqCst),
        3,
        "drain ran after all three accept loops ended"
    );
}
