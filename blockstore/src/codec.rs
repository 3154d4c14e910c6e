//! Typed values for deserialized storage levels.

use std::any::Any;
use std::sync::Arc;

/// Turns a block's typed values into bytes and back, and estimates their in-memory size.
///
/// Deserialized levels keep the values themselves in the memory store, charged at
/// [`Codec::estimate_size`]; the codec is used when the block is spilled to disk, replicated,
/// or read as bytes.
pub trait Codec: Clone + Send + Sync + 'static {
    /// The value type.
    type Value: Send + Sync + 'static;
    /// Appends the encoding of `values` to `out`.
    fn encode(&self, values: &[Self::Value], out: &mut Vec<u8>);
    /// Decodes bytes produced by [`Codec::encode`]; must not panic on bad input.
    fn decode(&self, bytes: &[u8]) -> Result<Vec<Self::Value>, String>;
    /// Estimated bytes `values` occupy in memory, used for the memory budget.
    fn estimate_size(&self, values: &[Self::Value]) -> u64;
}

/// Values of some codec, type-erased for the memory store.
pub(crate) trait ErasedValues: Send + Sync {
    /// The values' byte encoding.
    fn encode(&self) -> Vec<u8>;
    /// The values as `Arc<Vec<C::Value>>` behind `dyn Any`, for downcasting.
    fn values(&self) -> Arc<dyn Any + Send + Sync>;
}

pub(crate) struct TypedValues<C: Codec> {
    pub(crate) codec: C,
    pub(crate) values: Arc<Vec<C::Value>>,
}

impl<C: Codec> ErasedValues for TypedValues<C> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.codec.encode(&self.values, &mut out);
        out
    }

    fn values(&self) -> Arc<dyn Any + Send + Sync> {
        self.values.clone()
    }
}
