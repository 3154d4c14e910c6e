//! The transfer service's wire format: checksummed, length-prefixed frames carrying messages.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::block_id::BlockId;
use crate::level::StorageLevel;
use crate::local::{BlockStatus, StoredBytes};

/// Largest frame accepted before a connection has authenticated.
pub(crate) const PRE_AUTH_MAX_FRAME: u32 = 1024;

/// Why a request to a peer, or a connection from one, failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Socket error, including the peer hanging up.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// A frame longer than the configured maximum; refused before allocating.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Length announced.
        len: u32,
        /// Maximum accepted.
        max: u32,
    },
    /// A frame whose payload does not match its CRC32C.
    #[error("frame checksum {actual:#010x} does not match header {expected:#010x}")]
    Checksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the payload received.
        actual: u32,
    },
    /// A payload that does not decode to a known message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The challenge-response handshake failed (or one side has no secret).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No complete reply within the I/O timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer answered with an error.
    #[error("peer reported: {0}")]
    Remote(String),
    /// The peer answered with a message that does not fit the request.
    #[error("unexpected reply to {0}")]
    Unexpected(&'static str),
}

/// A node as known to the master: its id, transfer-service address and host name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Random id chosen by the node at start (a restarted node gets a new one).
    pub id: u64,
    /// Address of its transfer service.
    pub addr: SocketAddr,
    /// Host name, for the replication policy.
    pub host: String,
    /// Whether it accepts replicas from peers.
    pub accepts_replicas: bool,
}

/// Every message of the protocol. Each request gets exactly one reply on the same connection.
#[derive(Clone)]
pub(crate) enum Message {
    // Handshake (see `transfer`).
    Hello {
        auth_required: bool,
        nonce: [u8; 32],
    },
    AuthResponse {
        client_nonce: [u8; 32],
        mac: [u8; 32],
    },
    AuthOk {
        mac: [u8; 32],
    },
    // Node requests.
    PutBlock {
        id: BlockId,
        level: StorageLevel,
        size: u64,
        replicate: bool,
        stored: StoredBytes,
    },
    GetBlock {
        id: BlockId,
    },
    RemoveBlock {
        id: BlockId,
    },
    ReplicateBlock {
        id: BlockId,
        targets: Vec<NodeInfo>,
    },
    // Master requests.
    RegisterNode {
        node: NodeInfo,
    },
    Heartbeat {
        node: u64,
    },
    UpdateBlock {
        node: u64,
        id: BlockId,
        status: Option<BlockStatus>,
    },
    GetPeers {
        node: u64,
    },
    GetLocations {
        id: BlockId,
    },
    RemoveEverywhere {
        id: BlockId,
    },
    // Replies.
    Ok,
    Block {
        size: u64,
        level: StorageLevel,
        stored: StoredBytes,
    },
    NotFound,
    Nodes(Vec<NodeInfo>),
    HeartbeatAck {
        known: bool,
    },
    Replicated {
        copies: u32,
    },
    Error {
        message: String,
    },
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const AUTH_RESPONSE: u8 = 2;
    pub const AUTH_OK: u8 = 3;
    pub const PUT_BLOCK: u8 = 10;
    pub const GET_BLOCK: u8 = 11;
    pub const REMOVE_BLOCK: u8 = 12;
    pub const REPLICATE_BLOCK: u8 = 13;
    pub const REGISTER_NODE: u8 = 20;
    pub const HEARTBEAT: u8 = 21;
    pub const UPDATE_BLOCK: u8 = 22;
    pub const GET_PEERS: u8 = 23;
    pub const GET_LOCATIONS: u8 = 24;
    pub const REMOVE_EVERYWHERE: u8 = 25;
    pub const OK: u8 = 40;
    pub const BLOCK: u8 = 41;
    pub const NOT_FOUND: u8 = 42;
    pub const NODES: u8 = 43;
    pub const HEARTBEAT_ACK: u8 = 44;
    pub const REPLICATED: u8 = 45;
    pub const ERROR: u8 = 46;
}

/// Builds a payload. Field encodings: integers little-endian; `bool` one byte 0/1; byte
/// strings and UTF-8 strings a u32 length then the bytes; a block id its display name as a
/// string; a level two bytes (flags: bit 0 disk, bit 1 memory, bit 2 deserialized; then the
/// replication factor); a node `id u64, addr string, host string, accepts_replicas bool`; a node
/// list a u32 count then the nodes; an optional status a presence byte then `level, in_memory
/// bool, on_disk bool, size u64, memory_size u64, disk_size u64`.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        self.u32(v.len() as u32).raw(v.as_bytes())
    }
    fn id(&mut self, id: &BlockId) -> &mut Self {
        self.str(&id.to_string())
    }
    fn level(&mut self, level: StorageLevel) -> &mut Self {
        self.raw(&level.to_wire())
    }
    fn node(&mut self, n: &NodeInfo) -> &mut Self {
        self.u64(n.id)
            .str(&n.addr.to_string())
            .str(&n.host)
            .bool(n.accepts_replicas)
    }
    fn nodes(&mut self, nodes: &[NodeInfo]) -> &mut Self {
        self.u32(nodes.len() as u32);
        for n in nodes {
            self.node(n);
        }
        self
    }
    /// The stored-bytes header; the data itself follows as the frame's tail.
    fn stored_head(&mut self, s: &StoredBytes) -> &mut Self {
        self.bool(s.compressed).u32(s.data.len() as u32)
    }
}

/// Reads a payload, every read bounds-checked; slices of the payload are zero-copy.
struct Reader {
    buf: Bytes,
    pos: usize,
}

fn malformed(what: &str) -> TransferError {
    TransferError::Malformed(what.to_string())
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, TransferError> {
        if self.buf.len() - self.pos < n {
            return Err(malformed("truncated payload"));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], TransferError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&b);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, TransferError> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, TransferError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed("bad bool")),
        }
    }
    fn u32(&mut self) -> Result<u32, TransferError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, TransferError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<Bytes, TransferError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, TransferError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| malformed("bad UTF-8"))
    }
    fn id(&mut self) -> Result<BlockId, TransferError> {
        self.str()?
            .parse()
            .map_err(|e: crate::BlockError| TransferError::Malformed(e.to_string()))
    }
    fn level(&mut self) -> Result<StorageLevel, TransferError> {
        StorageLevel::from_wire(self.array()?).ok_or_else(|| malformed("bad storage level"))
    }
    fn node(&mut self) -> Result<NodeInfo, TransferError> {
        Ok(NodeInfo {
            id: self.u64()?,
            addr: self.str()?.parse().map_err(|_| malformed("bad address"))?,
            host: self.str()?,
            accepts_replicas: self.bool()?,
        })
    }
    fn nodes(&mut self) -> Result<Vec<NodeInfo>, TransferError> {
        let n = self.u32()? as usize;
        // Each node takes at least 17 bytes; refuse counts the payload cannot hold.
        if n > (self.buf.len() - self.pos) / 17 {
            return Err(malformed("node count exceeds payload"));
        }
        (0..n).map(|_| self.node()).collect()
    }
    fn stored(&mut self) -> Result<StoredBytes, TransferError> {
        let compressed = self.bool()?;
        Ok(StoredBytes {
            compressed,
            data: self.bytes()?,
        })
    }
    fn status(&mut self) -> Result<Option<BlockStatus>, TransferError> {
        if !self.bool()? {
            return Ok(None);
        }
        Ok(Some(BlockStatus {
            level: self.level()?,
            in_memory: self.bool()?,
            on_disk: self.bool()?,
            size: self.u64()?,
            memory_size: self.u64()?,
            disk_size: self.u64()?,
        }))
    }
}

impl Message {
    /// The payload as a head and an optional tail (block data), so large blocks are written
    /// to the socket without copying. The tail, when present, is the last field.
    pub(crate) fn encode(&self) -> (Vec<u8>, Option<Bytes>) {
        use Message as M;
        let mut w = Writer(Vec::with_capacity(64));
        let mut tail = None;
        match self {
            M::Hello {
                auth_required,
                nonce,
            } => {
                w.u8(tag::HELLO).bool(*auth_required).raw(nonce);
            }
            M::AuthResponse { client_nonce, mac } => {
                w.u8(tag::AUTH_RESPONSE).raw(client_nonce).raw(mac);
            }
            M::AuthOk { mac } => {
                w.u8(tag::AUTH_OK).raw(mac);
            }
            M::PutBlock {
                id,
                level,
                size,
                replicate,
                stored,
            } => {
                w.u8(tag::PUT_BLOCK)
                    .id(id)
                    .level(*level)
                    .u64(*size)
                    .bool(*replicate);
                w.stored_head(stored);
                tail = Some(stored.data.clone());
            }
            M::GetBlock { id } => {
                w.u8(tag::GET_BLOCK).id(id);
            }
            M::RemoveBlock { id } => {
                w.u8(tag::REMOVE_BLOCK).id(id);
            }
            M::ReplicateBlock { id, targets } => {
                w.u8(tag::REPLICATE_BLOCK).id(id).nodes(targets);
            }
            M::RegisterNode { node } => {
                w.u8(tag::REGISTER_NODE).node(node);
            }
            M::Heartbeat { node } => {
                w.u8(tag::HEARTBEAT).u64(*node);
            }
            M::UpdateBlock { node, id, status } => {
                w.u8(tag::UPDATE_BLOCK)
                    .u64(*node)
                    .id(id)
                    .bool(status.is_some());
                if let Some(s) = status {
                    w.level(s.level).bool(s.in_memory).bool(s.on_disk);
                    w.u64(s.size).u64(s.memory_size).u64(s.disk_size);
                }
            }
            M::GetPeers { node } => {
                w.u8(tag::GET_PEERS).u64(*node);
            }
            M::GetLocations { id } => {
                w.u8(tag::GET_LOCATIONS).id(id);
            }
            M::RemoveEverywhere { id } => {
                w.u8(tag::REMOVE_EVERYWHERE).id(id);
            }
            M::Ok => {
                w.u8(tag::OK);
            }
            M::Block {
                size,
                level,
                stored,
            } => {
                w.u8(tag::BLOCK)
                    .u64(*size)
                    .level(*level)
                    .stored_head(stored);
                tail = Some(stored.data.clone());
            }
            M::NotFound => {
                w.u8(tag::NOT_FOUND);
            }
            M::Nodes(nodes) => {
                w.u8(tag::NODES).nodes(nodes);
            }
            M::HeartbeatAck { known } => {
                w.u8(tag::HEARTBEAT_ACK).bool(*known);
            }
            M::Replicated { copies } => {
                w.u8(tag::REPLICATED).u32(*copies);
            }
            M::Error { message } => {
                w.u8(tag::ERROR).str(message);
            }
        }
        (w.0, tail)
    }

    /// Decodes a payload; every malformed input is an error, never a panic.
    pub(crate) fn decode(payload: Bytes) -> Result<Message, TransferError> {
        use Message as M;
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        let msg = match r.u8()? {
            tag::HELLO => M::Hello {
                auth_required: r.bool()?,
                nonce: r.array()?,
            },
            tag::AUTH_RESPONSE => M::AuthResponse {
                client_nonce: r.array()?,
                mac: r.array()?,
            },
            tag::AUTH_OK => M::AuthOk { mac: r.array()? },
            tag::PUT_BLOCK => M::PutBlock {
                id: r.id()?,
                level: r.level()?,
                size: r.u64()?,
                replicate: r.bool()?,
                stored: r.stored()?,
            },
            tag::GET_BLOCK => M::GetBlock { id: r.id()? },
            tag::REMOVE_BLOCK => M::RemoveBlock { id: r.id()? },
            tag::REPLICATE_BLOCK => M::ReplicateBlock {
                id: r.id()?,
                targets: r.nodes()?,
            },
            tag::REGISTER_NODE => M::RegisterNode { node: r.node()? },
            tag::HEARTBEAT => M::Heartbeat { node: r.u64()? },
            tag::UPDATE_BLOCK => M::UpdateBlock {
                node: r.u64()?,
                id: r.id()?,
                status: r.status()?,
            },
            tag::GET_PEERS => M::GetPeers { node: r.u64()? },
            tag::GET_LOCATIONS => M::GetLocations { id: r.id()? },
            tag::REMOVE_EVERYWHERE => M::RemoveEverywhere { id: r.id()? },
            tag::OK => M::Ok,
            tag::BLOCK => M::Block {
                size: r.u64()?,
                level: r.level()?,
                stored: r.stored()?,
            },
            tag::NOT_FOUND => M::NotFound,
            tag::NODES => M::Nodes(r.nodes()?),
            tag::HEARTBEAT_ACK => M::HeartbeatAck { known: r.bool()? },
            tag::REPLICATED => M::Replicated { copies: r.u32()? },
            tag::ERROR => M::Error { message: r.str()? },
            other => {
                return Err(TransferError::Malformed(format!(
                    "unknown message tag {other}"
                )));
            }
        };
        if r.pos != r.buf.len() {
            return Err(malformed("trailing bytes after message"));
        }
        Ok(msg)
    }
}

/// Block data is checksummed and written in chunks of this size, so the receiver can read and
/// checksum one chunk while the sender checksums the next.
const WRITE_CHUNK: usize = 256 << 10;

/// Writes one frame:
/// ```text
/// | payload length: u32 LE | payload: tag u8, fields | CRC32C of payload: u32 LE |
/// ```
/// The payload is `head` followed by `tail`. The checksum trails the payload so both sides
/// compute it while the bytes stream, instead of one full pass before sending and another
/// after receiving. The socket is flushed afterwards.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Message,
) -> Result<(), TransferError> {
    let (head, tail) = msg.encode();
    let tail = tail.unwrap_or_default();
    let len = u32::try_from(head.len() + tail.len())
        .map_err(|_| malformed("message larger than 4 GiB"))?;
    w.write_all(&len.to_le_bytes()).await?;
    w.write_all(&head).await?;
    let mut crc = crc32c::crc32c(&head);
    for chunk in tail.chunks(WRITE_CHUNK) {
        crc = crc32c::crc32c_append(crc, chunk);
        w.write_all(chunk).await?;
    }
    w.write_all(&crc.to_le_bytes()).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame, refusing a length above `max` before allocating anything for it, and
/// verifies its checksum (computed as the payload arrives).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
) -> Result<Message, TransferError> {
    let mut word = [0u8; 4];
    r.read_exact(&mut word).await?;
    let len = u32::from_le_bytes(word);
    if len > max {
        return Err(TransferError::FrameTooLarge { len, max });
    }
    // Read into uninitialised capacity: zeroing a large buffer first costs as much as a copy.
    let mut payload = BytesMut::with_capacity(len as usize);
    let mut actual = 0;
    while payload.len() < len as usize {
        let (done, remaining) = (payload.len(), (len as usize - payload.len()) as u64);
        if (&mut *r).take(remaining).read_buf(&mut payload).await? == 0 {
            return Err(TransferError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        actual = crc32c::crc32c_append(actual, &payload[done..]);
    }
    r.read_exact(&mut word).await?;
    let expected = u32::from_le_bytes(word);
    if actual != expected {
        return Err(TransferError::Checksum { expected, actual });
    }
    Message::decode(payload.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message) -> Message {
        let (head, tail) = msg.encode();
        let mut payload = head;
        if let Some(t) = tail {
            payload.extend_from_slice(&t);
        }
        Message::decode(Bytes::from(payload)).unwrap()
    }

    #[test]
    fn messages_round_trip() {
        let node = NodeInfo {
            id: 7,
            addr: "127.0.0.1:9".parse().unwrap(),
            host: "h".into(),
            accepts_replicas: true,
        };
        let stored = StoredBytes {
            data: Bytes::from_static(b"abc"),
            compressed: true,
        };
        let put = Message::PutBlock {
            id: BlockId::stream(1, 2),
            level: StorageLevel::MEMORY_AND_DISK_SER_2,
            size: 3,
            replicate: false,
            stored,
        };
        match round_trip(put) {
            Message::PutBlock {
                id,
                level,
                size,
                replicate,
                stored,
            } => {
                assert_eq!(
                    (id, level, size, replicate),
                    (
                        BlockId::stream(1, 2),
                        StorageLevel::MEMORY_AND_DISK_SER_2,
                        3,
                        false
                    )
                );
                assert_eq!((&stored.data[..], stored.compressed), (&b"abc"[..], true));
            }
            _ => panic!("wrong message"),
        }
        match round_trip(Message::Nodes(vec![node.clone(), node.clone()])) {
            Message::Nodes(n) => assert_eq!(n, vec![node.clone(), node]),
            _ => panic!("wrong message"),
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for bad in [
            &b""[..],
            &[99],
            &[tag::GET_BLOCK, 5, 0, 0, 0, b'x'],
            &[tag::NODES, 255, 255, 255, 255],
            &[tag::OK, 0],
        ] {
            assert!(Message::decode(Bytes::copy_from_slice(bad)).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Message::decode(Bytes::from(bytes));
        }

        #[test]
        fn decoding_a_corrupted_put_never_panics(flip in 0usize..200, mask in 1u8..=255) {
            let put = Message::PutBlock {
                id: BlockId::stream(3, 4),
                level: StorageLevel::DISK_ONLY_2,
                size: 5,
                replicate: true,
                stored: StoredBytes { data: Bytes::from_static(b"hello"), compressed: false },
            };
            let (mut head, _) = put.encode();
            head.extend_from_slice(b"hello");
            let i = flip % head.len();
            head[i] ^= mask;
            let _ = Message::decode(Bytes::from(head));
        }
    }

    #[tokio::test]
    async fn frames_check_length_and_checksum() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Message::GetBlock {
                id: BlockId::stream(0, 1),
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            read_frame(&mut &buf[..], 1024).await,
            Ok(Message::GetBlock { .. })
        ));
        assert!(matches!(
            read_frame(&mut &buf[..], 4).await,
            Err(TransferError::FrameTooLarge { .. })
        ));
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(matches!(
            read_frame(&mut &buf[..], 1024).await,
            Err(TransferError::Checksum { .. })
        ));
        assert!(matches!(
            read_frame(&mut &buf[..5], 1024).await,
            Err(TransferError::Io(_))
        ));
    }
}
