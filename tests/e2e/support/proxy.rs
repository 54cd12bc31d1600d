//! A TCP proxy on loopback that a test controls: it forwards to a target until cut (every open
//! connection is reset and new ones are refused), then forwards again once restored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Debug, Default)]
struct State {
    cut: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

#[derive(Debug, Clone)]
pub struct Proxy {
    /// `127.0.0.1:port` to connect to instead of the target.
    pub addr: String,
    state: Arc<State>,
}

/// Closes a socket with a reset rather than a polite FIN, as a cut link would look.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let target = target.to_owned();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    reset(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        reset(inbound);
                        return;
                    };
                    // Closed with a reset when the task is aborted by a cut.
                    let _ = inbound.set_zero_linger();
                    let _ = outbound.set_zero_linger();
                    let mut inbound = inbound;
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                if let Ok(mut connections) = shared.connections.lock() {
                    connections.retain(|handle| !handle.is_finished());
                    connections.push(task.abort_handle());
                }
            }
        });
        Self { addr, state }
    }

    /// Drops every open connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut connections) = self.state.connections.lock() {
            for handle in connections.drain(..) {
                handle.abort();
            }
        }
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}
