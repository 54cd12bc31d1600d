//! **Test and benchmark only**: a real SMTP server on loopback, for the end-to-end tests and
//! `make bench`, which must send rollcall's invitations over real SMTP connections and cannot
//! reach a mail provider.
//!
//! It speaks the protocol a client needs (greeting, EHLO, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT) on `127.0.0.1:0`, and answers the end of each message's
//! DATA as the caller asked: accept, `421`, `550`, or no answer at all ([`DataReply`]). It can
//! hold its answers until several messages wait at once ([`SmtpSink::gathering`]), which shows
//! that a client sends over several connections at a time without timing anything.
//!
//! It must not ship in the binary (it is a dev-dependency of the tests and a dependency of the
//! benchmark only), relay mail anywhere, or implement more of SMTP than those clients use.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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

/// What the sink does with accepted messages and when it answers.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Keep every accepted message (tests read them); a load only needs the count.
    keep_messages: bool,
    /// Hold each answer until this many messages wait for theirs at once, or `at_most` passed.
    gather: Option<(usize, Duration)>,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<String>,
    accepted: usize,
    script: Vec<DataReply>,
    attempts: usize,
    waiting: usize,
    most_waiting: usize,
}

/// The server. Dropping it does not stop the listener: it lives as long as the process.
#[derive(Debug, Clone)]
pub struct SmtpSink {
    /// `smtp://127.0.0.1:{port}`, as `ROLLCALL_SMTP_URL` takes it.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    /// Accepts and keeps every message.
    pub async fn start() -> io::Result<Self> {
        Self::scripted(Vec::new()).await
    }

    /// Answers the n-th DATA with `script[n]`, and accepts after the script runs out.
    pub async fn scripted(script: Vec<DataReply>) -> io::Result<Self> {
        let behaviour = Behaviour {
            keep_messages: true,
            gather: None,
        };
        Self::listen(script, behaviour).await
    }

    /// Accepts every message and keeps only their count: a sink for a load of thousands.
    pub async fn counting() -> io::Result<Self> {
        let behaviour = Behaviour {
            keep_messages: false,
            gather: None,
        };
        Self::listen(Vec::new(), behaviour).await
    }

    /// Accepts and keeps every message, but holds each answer until `at_once` messages wait
    /// for theirs together (from then on it answers at once), or until `at_most` has passed
    /// for that message, so a client that sends one message at a time is slowed, not stuck.
    /// [`SmtpSink::most_waiting_at_once`] then tells whether the client ever had `at_once`
    /// messages in flight.
    pub async fn gathering(at_once: usize, at_most: Duration) -> io::Result<Self> {
        let behaviour = Behaviour {
            keep_messages: true,
            gather: Some((at_once, at_most)),
        };
        Self::listen(Vec::new(), behaviour).await
    }

    async fn listen(script: Vec<DataReply>, behaviour: Behaviour) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let (gathered, _) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = Session {
                    state: Arc::clone(&shared),
                    behaviour,
                    gathered: gathered.clone(),
                };
                tokio::spawn(session.run(stream));
            }
        });
        Ok(Self {
            url: format!("smtp://{addr}"),
            state,
        })
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every accepted message, raw (headers and body); empty for a counting sink.
    #[must_use]
    pub fn messages(&self) -> Vec<String> {
        self.read(|state| state.messages.clone())
    }

    /// How many messages were accepted.
    #[must_use]
    pub fn accepted(&self) -> usize {
        self.read(|state| state.accepted)
    }

    /// How many times a client reached the end of DATA (accepted or not).
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.read(|state| state.attempts)
    }

    /// The most messages that were waiting for their answer at the same time (counted by a
    /// gathering sink only).
    #[must_use]
    pub fn most_waiting_at_once(&self) -> usize {
        self.read(|state| state.most_waiting)
    }
}

/// One client connection.
struct Session {
    state: Arc<Mutex<State>>,
    behaviour: Behaviour,
    /// Becomes `true` once `gather`'s count of messages waited together.
    gathered: watch::Sender<bool>,
}

impl Session {
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn run(self, stream: TcpStream) {
        // Answers are single writes, as a server's are; without this, Nagle would hold a
        // reply back until the client acknowledged the previous one.
        let _ = stream.set_nodelay(true);
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
                let Some(message) = read_message(&mut lines).await else {
                    return;
                };
                match self.answer(message).await {
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

    /// Decides the answer to a complete message (recording it when accepted), after holding
    /// it while the sink gathers messages.
    async fn answer(&self, message: String) -> DataReply {
        self.gather().await;
        self.with_state(|state| {
            let n = state.attempts;
            state.attempts += 1;
            let decision = state.script.get(n).copied().unwrap_or(DataReply::Accept);
            if decision == DataReply::Accept {
                state.accepted += 1;
                if self.behaviour.keep_messages {
                    state.messages.push(message);
                }
            }
            decision
        })
    }

    async fn gather(&self) {
        let Some((at_once, at_most)) = self.behaviour.gather else {
            return;
        };
        let mut gathered = self.gathered.subscribe();
        let waiting = self.with_state(|state| {
            state.waiting += 1;
            state.most_waiting = state.most_waiting.max(state.waiting);
            state.waiting
        });
        if waiting >= at_once {
            self.gathered.send_replace(true);
        }
        let _ = tokio::time::timeout(at_most, gathered.wait_for(|done| *done)).await;
        self.with_state(|state| state.waiting -= 1);
    }
}

/// The message after DATA, up to the lone dot, dot-unstuffed (RFC 5321 4.5.2); `None` if the
/// client went away first.
async fn read_message<R: AsyncBufReadExt + Unpin>(lines: &mut R) -> Option<String> {
    let mut message = String::new();
    loop {
        let mut data = String::new();
        match lines.read_line(&mut data).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if data == ".\r\n" || data == ".\n" {
            return Some(message);
        }
        message.push_str(data.strip_prefix('.').unwrap_or(&data));
    }
}
