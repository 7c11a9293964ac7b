use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A cut notice that never turns: its sender lives as long as the tests.
fn never_cut() -> Shutdown {
    static NEVER: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
        std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);
    NEVER.subscribe()
}

/// A connected pair of loopback sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let connect = TcpStream::connect(listener.local_addr().unwrap());
    let (connected, accepted) = tokio::join!(connect, listener.accept());
    (connected.unwrap(), accepted.unwrap().0)
}

/// A client and a server end, and the relay's two sockets between them.
struct Lab {
    client: TcpStream,
    client_side: TcpStream,
    server_side: TcpStream,
    server: TcpStream,
}

async fn lab() -> Lab {
    let (client, client_side) = pair().await;
    let (server_side, server) = pair().await;
    Lab {
        client,
        client_side,
        server_side,
        server,
    }
}

#[tokio::test]
async fn relays_both_ways_with_half_close_and_counts_bytes() {
    let Lab {
        mut client,
        client_side,
        server_side,
        mut server,
    } = lab().await;
    let counters = Counters::default();
    let mut cut = never_cut();
    let relay = relay(
        client_side,
        server_side,
        Duration::from_secs(5),
        &counters,
        &mut cut,
    );
    let peers = async {
        client.write_all(&vec![7u8; 300_000]).await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got.len(),
            300_000,
            "server saw the whole upload and then EOF"
        );
        server.write_all(b"answer after half-close").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = String::new();
        client.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "answer after half-close");
    };
    let (end, ()) = tokio::join!(relay, peers);
    assert!(matches!(end, RelayEnd::Closed), "{end:?}");
    assert_eq!(
        counters.transfer(),
        Transfer {
            up: 300_000,
            down: 23
        }
    );
}

#[tokio::test]
async fn last_bytes_that_came_with_the_fin_arrive_and_half_close_only_that_way() {
    let Lab {
        mut client,
        client_side,
        server_side,
        mut server,
    } = lab().await;
    // The answer and its FIN are queued before the relay reads anything.
    server.write_all(b"the whole answer").await.unwrap();
    server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counters = Counters::default();
    let mut cut = never_cut();
    let relay = relay(
        client_side,
        server_side,
        Duration::from_secs(5),
        &counters,
        &mut cut,
    );
    let peers = async {
        let mut back = String::new();
        client.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "the whole answer", "the bytes, then EOF");
        client.write_all(b"still heard").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = String::new();
        server.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "still heard", "the other direction stayed open");
    };
    let (end, ()) = tokio::join!(relay, peers);
    assert!(matches!(end, RelayEnd::Closed), "{end:?}");
    assert_eq!(counters.transfer(), Transfer { up: 11, down: 16 });
}

#[tokio::test]
async fn bulk_data_arrives_intact_after_the_pipe_grows() {
    let Lab {
        mut client,
        client_side,
        server_side,
        mut server,
    } = lab().await;
    let counters = Counters::default();
    let mut cut = never_cut();
    let relay = relay(
        client_side,
        server_side,
        Duration::from_secs(5),
        &counters,
        &mut cut,
    );
    let payload: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let send = async {
        server.write_all(&payload).await.unwrap();
        server.shutdown().await.unwrap();
    };
    let receive = async {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        client.shutdown().await.unwrap();
        got
    };
    let (end, (), got) = tokio::join!(relay, send, receive);
    assert!(matches!(end, RelayEnd::Closed), "{end:?}");
    assert!(
        got == payload,
        "8 MiB arrived altered or incomplete ({} bytes)",
        got.len()
    );
    assert_eq!(counters.transfer().down, payload.len() as u64);
}

#[tokio::test]
async fn an_idle_relay_ends_after_the_timeout() {
    // The ends stay open (bound, not dropped): the relay must end for idleness, not EOF.
    let Lab {
        client: _client,
        client_side,
        server_side,
        server: _server,
    } = lab().await;
    let counters = Counters::default();
    let started = Instant::now();
    let end = relay(
        client_side,
        server_side,
        Duration::from_millis(200),
        &counters,
        &mut never_cut(),
    )
    .await;
    assert!(matches!(end, RelayEnd::Idle), "{end:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_cut_ends_an_open_relay_at_once() {
    let Lab {
        client: _client,
        client_side,
        server_side,
        server: _server,
    } = lab().await;
    let (cut, mut notice) = tokio::sync::watch::channel(false);
    let counters = Counters::default();
    let relay = relay(
        client_side,
        server_side,
        Duration::from_secs(30),
        &counters,
        &mut notice,
    );
    let cutter = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cut.send_replace(true);
    };
    let started = Instant::now();
    let (end, ()) = tokio::join!(relay, cutter);
    assert!(matches!(end, RelayEnd::Cut), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
