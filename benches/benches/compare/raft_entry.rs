//! The log entry raft-engine stores in this benchmark.
//!
//! raft-engine appends protobuf (rust-protobuf 2) messages and needs their
//! index; TiKV uses `eraftpb::Entry`, whose crate needs a protobuf compiler at
//! build time. This is the same shape written by hand: field 1 `index`
//! (uint64), field 2 `data` (bytes), so an entry costs raft-engine exactly what
//! an `eraftpb::Entry` with only those fields set would (a 1 KiB payload
//! encodes to 1 KiB + 6 bytes). The reflection descriptor is real, built once.

use protobuf::descriptor::{
    DescriptorProto, FieldDescriptorProto, FieldDescriptorProto_Label, FieldDescriptorProto_Type,
    FileDescriptorProto,
};
use protobuf::reflect::MessageDescriptor;
use protobuf::reflect::accessor::make_simple_field_accessor;
use protobuf::rt::LazyV2;
use protobuf::types::{ProtobufTypeBytes, ProtobufTypeUint64};
use protobuf::wire_format::WireType;
use protobuf::{
    CachedSize, Clear, CodedInputStream, CodedOutputStream, Message, ProtobufResult, UnknownFields,
};

/// One raft-engine log entry: an index and an opaque payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchEntry {
    pub index: u64,
    pub data: Vec<u8>,
    unknown_fields: UnknownFields,
    cached_size: CachedSize,
}

/// The raft-engine message type whose entries are [`BenchEntry`].
pub struct BenchMessages;

impl raft_engine::MessageExt for BenchMessages {
    type Entry = BenchEntry;

    fn index(e: &BenchEntry) -> u64 {
        e.index
    }
}

impl Clear for BenchEntry {
    fn clear(&mut self) {
        self.index = 0;
        self.data.clear();
        self.unknown_fields.clear();
    }
}

impl Message for BenchEntry {
    fn descriptor(&self) -> &'static MessageDescriptor {
        Self::descriptor_static()
    }

    fn is_initialized(&self) -> bool {
        true
    }

    fn merge_from(&mut self, is: &mut CodedInputStream<'_>) -> ProtobufResult<()> {
        while !is.eof()? {
            let (field, wire_type) = is.read_tag_unpack()?;
            match (field, wire_type) {
                (1, WireType::WireTypeVarint) => self.index = is.read_uint64()?,
                (2, WireType::WireTypeLengthDelimited) => is.read_bytes_into(&mut self.data)?,
                (1 | 2, other) => return Err(protobuf::rt::unexpected_wire_type(other)),
                _ => protobuf::rt::read_unknown_or_skip_group(
                    field,
                    wire_type,
                    is,
                    &mut self.unknown_fields,
                )?,
            }
        }
        Ok(())
    }

    fn compute_size(&self) -> u32 {
        let mut size = 0;
        if self.index != 0 {
            size += protobuf::rt::value_size(1, self.index, WireType::WireTypeVarint);
        }
        if !self.data.is_empty() {
            size += protobuf::rt::bytes_size(2, &self.data);
        }
        size += protobuf::rt::unknown_fields_size(&self.unknown_fields);
        self.cached_size.set(size);
        size
    }

    fn write_to_with_cached_sizes(&self, os: &mut CodedOutputStream<'_>) -> ProtobufResult<()> {
        if self.index != 0 {
            os.write_uint64(1, self.index)?;
        }
        if !self.data.is_empty() {
            os.write_bytes(2, &self.data)?;
        }
        os.write_unknown_fields(&self.unknown_fields)
    }

    fn get_cached_size(&self) -> u32 {
        self.cached_size.get()
    }

    fn get_unknown_fields(&self) -> &UnknownFields {
        &self.unknown_fields
    }

    fn mut_unknown_fields(&mut self) -> &mut UnknownFields {
        &mut self.unknown_fields
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }

    fn new() -> Self {
        BenchEntry::default()
    }

    fn descriptor_static() -> &'static MessageDescriptor {
        static DESCRIPTOR: LazyV2<MessageDescriptor> = LazyV2::INIT;
        DESCRIPTOR.get(|| {
            let fields = vec![
                make_simple_field_accessor::<_, ProtobufTypeUint64>(
                    "index",
                    |m: &BenchEntry| &m.index,
                    |m: &mut BenchEntry| &mut m.index,
                ),
                make_simple_field_accessor::<_, ProtobufTypeBytes>(
                    "data",
                    |m: &BenchEntry| &m.data,
                    |m: &mut BenchEntry| &mut m.data,
                ),
            ];
            MessageDescriptor::new_pb_name::<BenchEntry>("BenchEntry", fields, file_descriptor())
        })
    }

    fn default_instance() -> &'static Self {
        static INSTANCE: LazyV2<BenchEntry> = LazyV2::INIT;
        INSTANCE.get(BenchEntry::default)
    }
}

/// `tidemark_bench.proto`: `message BenchEntry { uint64 index = 1; bytes data = 2; }`.
fn file_descriptor() -> &'static FileDescriptorProto {
    static FILE: LazyV2<FileDescriptorProto> = LazyV2::INIT;
    FILE.get(|| {
        let field = |name: &str, number: i32, ty: FieldDescriptorProto_Type| {
            let mut f = FieldDescriptorProto::new();
            f.set_name(name.to_owned());
            f.set_number(number);
            f.set_label(FieldDescriptorProto_Label::LABEL_OPTIONAL);
            f.set_field_type(ty);
            f
        };
        let mut msg = DescriptorProto::new();
        msg.set_name("BenchEntry".to_owned());
        msg.set_field(
            vec![
                field("index", 1, FieldDescriptorProto_Type::TYPE_UINT64),
                field("data", 2, FieldDescriptorProto_Type::TYPE_BYTES),
            ]
            .into(),
        );
        let mut file = FileDescriptorProto::new();
        file.set_name("tidemark_bench.proto".to_owned());
        file.set_package("tidemark.bench".to_owned());
        file.set_syntax("proto3".to_owned());
        file.set_message_type(vec![msg].into());
        file
    })
}
