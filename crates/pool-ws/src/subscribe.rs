//! `Subscription`: the messages of a streaming peer, reconnecting by itself
//! with backoff and resubscribing after every (re)connect.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::address::parse;
use crate::error::WsError;
use crate::pool::WsPool;

/// What a [`Subscription`] yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// Connected, and `on_connect`'s messages sent: messages follow.
    Connected,
    /// A text or binary message of the peer.
    Message(Message),
    /// The connection was lost or could not be opened; a reconnect follows
    /// after a backoff. Messages sent by the peer meanwhile are lost: this is
    /// the gap.
    Disconnected(WsError),
}

/// A stream of [`SubscriptionEvent`]s (also [`next`](Self::next)). Its
/// connection is leased from the pool for as long as it lives (it counts
/// against the limits) and closed, never reused, when the subscription is
/// dropped. While silent for `keepalive_interval` it pings the peer and treats
/// a missing pong (`ping_timeout`) as a lost connection.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<SubscriptionEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscription {
    /// The next event; `None` only if the task ended (the pool was closed).
    pub async fn next(&mut self) -> Option<SubscriptionEvent> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for Subscription {
    type Item = SubscriptionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a session ended.
enum End {
    /// The subscriber is gone, or the pool closed.
    Stop,
    /// The connection was lost (or not opened): reconnect.
    Lost(WsError),
}

impl WsPool {
    /// Subscribes to the streaming peer at `url`: connects, sends the messages
    /// `on_connect` returns (the subscription requests), then yields every
    /// message; after a lost connection it reconnects with exponential backoff
    /// and full jitter (from `retry_backoff`, capped at 10 s) and calls
    /// `on_connect` again.
    ///
    /// # Errors
    /// [`WsError::InvalidUrl`] at once; connect failures come as
    /// [`SubscriptionEvent::Disconnected`] events.
    pub fn subscribe(
        &self,
        url: &str,
        on_connect: impl Fn() -> Vec<Message> + Send + Sync + 'static,
    ) -> Result<Subscription, WsError> {
        parse(url)?;
        let (tx, rx) = mpsc::channel(64);
        let pool = self.clone();
        let url = url.to_string();
        let task = tokio::spawn(async move {
            let base = pool.config().pool.retry_backoff;
            let mut attempt = 0u32;
            loop {
                match session(&pool, &url, &on_connect, &tx, &mut attempt).await {
                    End::Stop => return,
                    End::Lost(e) => {
                        let closed = matches!(&e, WsError::Pool(p) if matches!(**p, pool_core::PoolError::Closed));
                        if tx.send(SubscriptionEvent::Disconnected(e)).await.is_err() || closed {
                            return;
                        }
                    }
                }
                let pause = pool_core::util::backoff(base, attempt, Duration::from_secs(10));
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Subscription { rx, task })
    }
}

async fn session(
    pool: &WsPool,
    url: &str,
    on_connect: &(impl Fn() -> Vec<Message> + Send + Sync),
    tx: &mpsc::Sender<SubscriptionEvent>,
    attempt: &mut u32,
) -> End {
    let mut lease = match pool.get(url).await {
        Ok(lease) => lease,
        Err(e) => return End::Lost(e),
    };
    // A subscribed connection never goes back to the pool idle: the peer
    // would keep streaming into it.
    lease.retire();
    for msg in on_connect() {
        if let Err(e) = lease.send(msg).await {
            return End::Lost(e);
        }
    }
    *attempt = 0;
    if tx.send(SubscriptionEvent::Connected).await.is_err() {
        return End::Stop;
    }
    let config = pool.config();
    let quiet = config
        .pool
        .keepalive_interval
        .unwrap_or(Duration::from_secs(30));
    let mut pinged = false;
    loop {
        let wait = if pinged { config.ping_timeout } else { quiet };
        tokio::select! {
            _ = tx.closed() => return End::Stop,
            next = tokio::time::timeout(wait, lease.next_frame()) => match next {
                Err(_) if !pinged => {
                    if let Err(e) = lease.send_ping().await {
                        return End::Lost(e);
                    }
                    pinged = true;
                }
                Err(_) => return End::Lost(lease.ping_timed_out(wait)),
                Ok(Err(e)) => return End::Lost(e),
                Ok(Ok(msg)) => {
                    // Anything from the peer shows it alive.
                    pinged = false;
                    if matches!(msg, Message::Text(_) | Message::Binary(_))
                        && tx.send(SubscriptionEvent::Message(msg)).await.is_err()
                    {
                        return End::Stop;
                    }
                }
            },
        }
    }
}
