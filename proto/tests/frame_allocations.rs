//! Allocation budget of the codec's hot path, counted by a test-only global allocator.
//!
//! Encoding into a buffer with room allocates nothing, whatever the serialization. Decoding a
//! frame allocates only what the command owns: the ext-field vector and one text buffer for
//! all keys and values (the body is a slice of the read buffer).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::frame::decode_frame;

struct CountingAllocator;

thread_local! {
    // Per thread, so tests running in parallel do not count each other's allocations.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn sample(serialize_type: SerializeType) -> RemotingCommand {
    let mut command = RemotingCommand::new_request(
        310,
        [("a", "group"), ("b", "topic"), ("i", "TAGS\u{1}TagA\u{2}")]
            .into_iter()
            .collect(),
        Bytes::from_static(b"0123456789"),
    );
    command.serialize_type = serialize_type;
    command.remark = Some("remark".into());
    command
}

#[test]
fn encoding_into_a_buffer_with_room_allocates_nothing() {
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let command = sample(serialize_type);
        let mut dst = BytesMut::with_capacity(4096);
        let count = allocations_during(|| {
            command.encode(&mut dst).unwrap();
            command.encode_head(&mut dst).unwrap();
        });
        assert_eq!(count, 0, "{serialize_type:?}");
    }
}

#[test]
fn decoding_allocates_only_what_the_command_owns() {
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let command = sample(serialize_type);
        let mut src = BytesMut::new();
        command.encode(&mut src).unwrap();
        let mut decoded = None;
        let count = allocations_during(|| decoded = decode_frame(&mut src).unwrap());
        assert_eq!(decoded.as_ref(), Some(&command));
        // What the command owns: the ext fields' box, one text buffer for the 3 keys and 3
        // values (sized from the header, so it never grows), the entry vector, the remark.
        // Plus one for promoting the read buffer to shared storage on its first split (the
        // price of the zero-copy body, paid once per buffer). JSON unescapes `\u0001` straight
        // into the text buffer, so both serializations have the same budget.
        let budget = 1 + 1 + 1 + 1 + 1;
        assert!(
            count <= budget,
            "{serialize_type:?}: {count} allocations, budget {budget}"
        );
    }
}

#[test]
fn empty_ext_fields_cost_no_vector() {
    let command = RemotingCommand::new_request(34, ExtFields::new(), Bytes::new());
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let mut command = command.clone();
        command.serialize_type = serialize_type;
        let mut src = BytesMut::new();
        command.encode(&mut src).unwrap();
        let count = allocations_during(|| {
            decode_frame(&mut src).unwrap().unwrap();
        });
        // Only the read buffer's promotion to shared storage (see above).
        assert!(count <= 1, "{serialize_type:?}: {count}");
    }
}
