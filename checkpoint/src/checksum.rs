//! CRC32C of large buffers, spread over the machine's cores.
//!
//! CRC32C is cheap per byte (hardware-accelerated) but a 64 MiB part still costs milliseconds,
//! which is a visible share of a checkpoint's time on fast storage. Large buffers are split into
//! segments checksummed on separate threads and the segment CRCs combined
//! (`combine`), giving the same value as one pass. Each pass runs on crc-fast.

use std::sync::OnceLock;

use bytes::Bytes;

/// Below this, one pass on the calling thread is cheaper than spawning threads.
const PARALLEL_THRESHOLD: usize = 4 * 1024 * 1024;
/// At most this many threads per checksum.
const MAX_THREADS: usize = 4;

/// CRC32C of `data`, computed in parallel for large buffers. Blocks: call it from a blocking
/// context (see [`crc32c_async`]).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    if data.len() < PARALLEL_THRESHOLD {
        return one_pass(data);
    }
    let threads = threads();
    if threads < 2 {
        return one_pass(data);
    }
    let segment = data.len().div_ceil(threads);
    let crcs: Vec<(u32, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = data
            .chunks(segment)
            .skip(1)
            .map(|chunk| scope.spawn(move || (one_pass(chunk), chunk.len())))
            .collect();
        let first = &data[..segment.min(data.len())];
        let mut crcs = vec![(one_pass(first), first.len())];
        for handle in handles {
            // A checksum thread cannot panic short of a bug in crc32c; fall back to one pass.
            match handle.join() {
                Ok(crc) => crcs.push(crc),
                Err(_) => return vec![(one_pass(data), data.len())],
            }
        }
        crcs
    });
    crcs.into_iter()
        .reduce(|(a, _), (b, len_b)| (combine(a, b, len_b), 0))
        .map_or(0, |(crc, _)| crc)
}

/// Threads a large checksum is spread over. Asked of the OS once per process:
/// `available_parallelism` reads cgroup files on every call (tens of µs, as much as a 1 MiB
/// checksum).
pub(crate) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    })
}

/// CRC32C of `data` in one pass on this thread: the crc32c crate's values, computed with
/// crc-fast's AVX-512 VPCLMULQDQ kernel where the CPU has one (about twice the crc32c crate's
/// SSE4.2 speed on the development machine).
fn one_pass(data: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(data)
}

/// CRC32C of the bytes before `data` (whose CRC32C is `crc`) followed by `data`; the same
/// value as `crc32c::crc32c_append`, computed by crc-fast.
pub(crate) fn append(crc: u32, data: &[u8]) -> u32 {
    // crc-fast keeps the register before the final inversion: continuing from a finished CRC
    // starts from its complement.
    let mut digest =
        crc_fast::Digest::new_with_init_state(crc_fast::CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(data);
    digest.finalize() as u32
}

/// CRC32C of `data` on one thread, off the async threads for large buffers: for checksums that
/// run beside an upload, which needs the other cores.
pub(crate) async fn crc32c_beside_io(data: Bytes) -> u32 {
    off_runtime(data, one_pass).await
}

/// The CRC32C of `A` followed by `B`, from `crc32c(A)`, `crc32c(B)` and `B`'s length.
///
/// Same value as `crc32c::crc32c_combine`, which multiplies by `x^(8 len)` through repeated
/// matrix squaring (about 17 µs per call here, as much as checksumming 1 MiB). Here `x^(8 len)`
/// is a product of precomputed `x^(2^k)` (zlib's method): well under a microsecond.
pub(crate) fn combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    if len_b == 0 {
        // An empty `B` has CRC 0; like the crc32c crate, any other value is ignored.
        return crc_a;
    }
    mul_mod_p(x_pow_8n(len_b as u64), crc_a) ^ crc_b
}

/// The reflected CRC32C (Castagnoli) polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `a * b` modulo the polynomial, in the reflected bit order (bit 31 is `x^0`).
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// `X2N[k]` is `x^(2^k)` modulo the polynomial.
const X2N: [u32; 64] = {
    let mut table = [0u32; 64];
    let mut p = 1u32 << 30; // x^1
    let mut k = 0;
    while k < 64 {
        table[k] = p;
        p = mul_mod_p(p, p);
        k += 1;
    }
    table
};

/// `x^(8 n)` modulo the polynomial: the factor that appends `n` zero bytes.
fn x_pow_8n(n: u64) -> u32 {
    let mut p = 1u32 << 31; // x^0
    let (mut n, mut k) = (n, 3usize);
    while n != 0 {
        if n & 1 != 0 {
            p = mul_mod_p(X2N[k % 64], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// [`crc32c`] off the async threads for large buffers.
pub(crate) async fn crc32c_async(data: Bytes) -> u32 {
    off_runtime(data, crc32c).await
}

/// `checksum(data)` on a blocking thread for large buffers, inline for small ones. A blocking
/// task that dies (it cannot short of a bug) falls back to one pass here.
async fn off_runtime(data: Bytes, checksum: fn(&[u8]) -> u32) -> u32 {
    if data.len() < PARALLEL_THRESHOLD {
        return one_pass(&data);
    }
    let fallback = data.clone();
    match tokio::task::spawn_blocking(move || checksum(&data)).await {
        Ok(crc) => crc,
        Err(_) => one_pass(&fallback),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_equals_one_pass() {
        for len in [
            0,
            1,
            63,
            100,
            1000,
            65_536,
            4 * 1024 * 1024 - 1,
            4 * 1024 * 1024,
            9 * 1024 * 1024 + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(super::crc32c(&data), crc32c::crc32c(&data), "len {len}");
        }
    }

    #[test]
    fn combine_equals_the_crc32c_crate() {
        let data: Vec<u8> = (0..200_000).map(|i| (i * 13 % 241) as u8).collect();
        for split in [0, 1, 7, 4096, 99_999, 200_000] {
            let (a, b) = data.split_at(split);
            let (crc_a, crc_b) = (crc32c::crc32c(a), crc32c::crc32c(b));
            assert_eq!(
                super::combine(crc_a, crc_b, b.len()),
                crc32c::crc32c(&data),
                "{split}"
            );
        }
        for len in [0usize, 1, 3, 1 << 20, (1 << 40) + 12_345] {
            assert_eq!(
                super::combine(0xDEAD_BEEF, 0x1234_5678, len),
                crc32c::crc32c_combine(0xDEAD_BEEF, 0x1234_5678, len),
                "{len}"
            );
        }
    }

    #[test]
    fn append_equals_the_crc32c_crate() {
        let data: Vec<u8> = (0..300_000).map(|i| (i * 7 % 253) as u8).collect();
        for (a, b) in [
            (0, 0),
            (0, 5),
            (1, 100),
            (4096, 300_000),
            (123_457, 299_999),
        ] {
            let start = crc32c::crc32c(&data[..a]);
            assert_eq!(
                super::append(start, &data[a..b]),
                crc32c::crc32c_append(start, &data[a..b]),
                "{a}..{b}"
            );
        }
    }

    #[test]
    fn combining_onto_the_empty_crc_is_identity() {
        let data = b"a streamed chunk";
        let crc = crc32c::crc32c(data);
        assert_eq!(crc32c::crc32c_combine(0, crc, data.len()), crc);
    }
}
