//! The transfer service: an authenticated request/reply server and a pooled client.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::auth::{self, Side};
use crate::protocol::{Message, PRE_AUTH_MAX_FRAME, TransferError, read_frame, write_frame};

/// Idle connections kept per peer.
const MAX_IDLE_PER_PEER: usize = 8;

/// Settings shared by the server and client sides.
#[derive(Clone)]
pub(crate) struct TransportConfig {
    pub(crate) secret: Option<Arc<[u8]>>,
    pub(crate) max_frame: u32,
    pub(crate) io_timeout: Duration,
}

/// One authenticated connection.
pub(crate) struct Connection {
    stream: BufStream<TcpStream>,
}

/// Sends requests to peers over pooled connections. A request on a reused connection that
/// fails is retried once on a fresh one (the peer may have closed it while idle); every
/// request is idempotent, so a retry after a lost reply is harmless.
pub(crate) struct Transport {
    config: TransportConfig,
    idle: Mutex<HashMap<SocketAddr, Vec<Connection>>>,
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, TransferError>>,
) -> Result<T, TransferError> {
    timeout(limit, fut)
        .await
        .map_err(|_| TransferError::Timeout(limit))?
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Self {
        Transport {
            config,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `msg` to `addr` and returns the reply; an `Error` reply becomes
    /// [`TransferError::Remote`].
    pub(crate) async fn request(
        &self,
        addr: SocketAddr,
        msg: &Message,
    ) -> Result<Message, TransferError> {
        let pooled = self.idle.lock().get_mut(&addr).and_then(Vec::pop);
        if let Some(conn) = pooled {
            match self.exchange(addr, conn, msg).await {
                Err(TransferError::Io(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "pooled connection failed; reconnecting");
                }
                other => return other,
            }
        }
        let conn = with_timeout(self.config.io_timeout, self.connect(addr)).await?;
        self.exchange(addr, conn, msg).await
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        mut conn: Connection,
        msg: &Message,
    ) -> Result<Message, TransferError> {
        let reply = with_timeout(self.config.io_timeout, async {
            write_frame(&mut conn.stream, msg).await?;
            read_frame(&mut conn.stream, self.config.max_frame).await
        })
        .await?;
        let mut idle = self.idle.lock();
        let slot = idle.entry(addr).or_default();
        if slot.len() < MAX_IDLE_PER_PEER {
            slot.push(conn);
        }
        match reply {
            Message::Error { message } => Err(TransferError::Remote(message)),
            reply => Ok(reply),
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Connection, TransferError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = BufStream::new(tcp);
        client_handshake(&mut stream, self.config.secret.as_deref()).await?;
        Ok(Connection { stream })
    }

    /// Drops pooled connections to `addr` (after the peer is known to be gone).
    pub(crate) fn forget(&self, addr: SocketAddr) {
        self.idle.lock().remove(&addr);
    }
}

/// Client side of the handshake. A client with a secret refuses a server that does not
/// authenticate, and one without a secret cannot talk to a server that requires one.
async fn client_handshake(
    stream: &mut BufStream<TcpStream>,
    secret: Option<&[u8]>,
) -> Result<(), TransferError> {
    let Message::Hello {
        auth_required,
        nonce: server_nonce,
    } = read_frame(stream, PRE_AUTH_MAX_FRAME).await?
    else {
        return Err(TransferError::Auth(
            "peer did not start with a hello".into(),
        ));
    };
    let secret = match (auth_required, secret) {
        (false, None) => return Ok(()),
        (true, Some(secret)) => secret,
        (true, None) => {
            return Err(TransferError::Auth(
                "peer requires a shared secret; none configured".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(TransferError::Auth(
                "peer does not authenticate; refusing it".into(),
            ));
        }
    };
    let client_nonce = auth::nonce();
    let mac = auth::prove(secret, Side::Client, &server_nonce, &client_nonce);
    write_frame(stream, &Message::AuthResponse { client_nonce, mac }).await?;
    match read_frame(stream, PRE_AUTH_MAX_FRAME).await? {
        Message::AuthOk { mac }
            if auth::verify(secret, Side::Server, &client_nonce, &server_nonce, &mac) =>
        {
            Ok(())
        }
        Message::AuthOk { .. } => Err(TransferError::Auth(
            "peer's proof does not match our secret".into(),
        )),
        Message::Error { message } => Err(TransferError::Auth(message)),
        _ => Err(TransferError::Auth("unexpected handshake reply".into())),
    }
}

/// Server side of the handshake: sends the hello, then (with a secret) accepts only a valid
/// proof. Frames before authentication are limited to [`PRE_AUTH_MAX_FRAME`] bytes.
async fn server_handshake(
    stream: &mut BufStream<TcpStream>,
    secret: Option<&[u8]>,
) -> Result<(), TransferError> {
    let nonce = auth::nonce();
    write_frame(
        stream,
        &Message::Hello {
            auth_required: secret.is_some(),
            nonce,
        },
    )
    .await?;
    let Some(secret) = secret else {
        return Ok(());
    };
    let ok = match read_frame(stream, PRE_AUTH_MAX_FRAME).await? {
        Message::AuthResponse { client_nonce, mac }
            if auth::verify(secret, Side::Client, &nonce, &client_nonce, &mac) =>
        {
            Some(auth::prove(secret, Side::Server, &client_nonce, &nonce))
        }
        _ => None,
    };
    match ok {
        Some(mac) => write_frame(stream, &Message::AuthOk { mac }).await,
        None => {
            let message = "authentication failed".to_string();
            write_frame(stream, &Message::Error { message }).await?;
            Err(TransferError::Auth(
                "peer's proof is wrong or missing".into(),
            ))
        }
    }
}

/// Accepts connections until the listener fails, serving each on its own task: handshake,
/// then one reply per request frame. A peer that sends a bad frame, fails to authenticate or
/// stalls beyond the I/O timeout mid-frame loses its connection; nothing else is affected.
pub(crate) async fn serve<H, F>(listener: TcpListener, config: TransportConfig, handler: H)
where
    H: Fn(Message) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Message> + Send + 'static,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let config = config.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(tcp, &config, handler).await {
                tracing::warn!(%peer, error = %e, "connection closed");
            }
        });
    }
}

async fn serve_connection<H, F>(
    tcp: TcpStream,
    config: &TransportConfig,
    handler: H,
) -> Result<(), TransferError>
where
    H: Fn(Message) -> F,
    F: Future<Output = Message>,
{
    tcp.set_nodelay(true)?;
    let mut stream = BufStream::new(tcp);
    let limit = config.io_timeout;
    with_timeout(
        limit,
        server_handshake(&mut stream, config.secret.as_deref()),
    )
    .await?;
    loop {
        let request = match with_timeout(limit, read_frame(&mut stream, config.max_frame)).await {
            Err(TransferError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(());
            }
            Err(TransferError::Timeout(_)) => {
                // Pooled connections idle past the timeout end here too, so not a warning.
                tracing::debug!("connection idle or stalled past the I/O timeout; closing it");
                return Ok(());
            }
            other => other?,
        };
        let reply = handler(request).await;
        with_timeout(limit, write_frame(&mut stream, &reply)).await?;
    }
}
