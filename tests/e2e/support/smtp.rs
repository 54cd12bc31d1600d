//! A real SMTP server on loopback, driven by the test: it speaks the protocol (greeting,
//! EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), records every message it
//! accepts, and answers the end of DATA as the test's script says (accept, 421, 550, or no
//! answer at all).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How to answer the end of one message's DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataReply {
    Accept,
    /// `421 try again later` and close the connection (transient).
    Busy,
    /// `550 mailbox unavailable` (permanent).
    Reject,
    /// Never answer: the client is left waiting mid-send until it goes away (the message is
    /// not accepted).
    Hang,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<String>,
    script: Vec<DataReply>,
    attempts: usize,
}

/// The server; dropping it does not stop the listener (it lives as long as the test).
#[derive(Debug, Clone)]
pub struct SmtpSink {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    /// Accepts every message.
    pub async fn start() -> Self {
        Self::scripted(Vec::new()).await
    }

    /// Answers the n-th DATA with `script[n]`, and accepts after the script runs out.
    pub async fn scripted(script: Vec<DataReply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMTP sink");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, Arc::clone(&shared)));
            }
        });
        Self {
            url: format!("smtp://{addr}"),
            state,
        }
    }

    /// Every accepted message, raw (headers and body).
    pub fn messages(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.messages.clone())
            .unwrap_or_default()
    }

    /// How many times a client reached the end of DATA (accepted or not).
    pub fn attempts(&self) -> usize {
        self.state.lock().map(|s| s.attempts).unwrap_or_default()
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink.test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO")
            || command.starts_with("MAIL")
            || command.starts_with("RCPT")
            || command.starts_with("RSET")
            || command.starts_with("NOOP")
        {
            b"250 OK\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command.starts_with("DATA") {
            if write
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut message = String::new();
            loop {
                let mut data = String::new();
                match lines.read_line(&mut data).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if data == ".\r\n" || data == ".\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 4.5.2).
                message.push_str(data.strip_prefix('.').unwrap_or(&data));
            }
            let decision = {
                let Ok(mut state) = state.lock() else { return };
                let n = state.attempts;
                state.attempts += 1;
                let decision = state.script.get(n).copied().unwrap_or(DataReply::Accept);
                if decision == DataReply::Accept {
                    state.messages.push(message);
                }
                decision
            };
            match decision {
                DataReply::Accept => b"250 queued\r\n",
                DataReply::Busy => {
                    let _ = write
                        .write_all(b"421 sink.test busy, try again later\r\n")
                        .await;
                    return;
                }
                DataReply::Reject => b"550 5.1.1 mailbox unavailable\r\n",
                DataReply::Hang => {
                    let mut rest = String::new();
                    while matches!(lines.read_line(&mut rest).await, Ok(n) if n > 0) {
                        rest.clear();
                    }
                    return;
                }
            }
        } else {
            b"502 command not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
