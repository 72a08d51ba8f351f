//! Property tests: any command round-trips through either serialization, and the decoder
//! yields the same commands however the byte stream is cut into reads.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringmq_proto::command::{ExtFields, LanguageCode, RemotingCommand, SerializeType};
use ringmq_proto::frame::decode_frame;

const LANGUAGES: [LanguageCode; 14] = [
    LanguageCode::Java,
    LanguageCode::Cpp,
    LanguageCode::Dotnet,
    LanguageCode::Python,
    LanguageCode::Delphi,
    LanguageCode::Erlang,
    LanguageCode::Ruby,
    LanguageCode::Other,
    LanguageCode::Http,
    LanguageCode::Go,
    LanguageCode::Php,
    LanguageCode::Oms,
    LanguageCode::Rust,
    LanguageCode::NodeJs,
];

/// Any text, control characters and non-ASCII included; non-empty because both
/// serializations carry an empty remark or ext value as "absent".
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 1..24).prop_map(String::from_iter)
}

fn ext_fields() -> impl Strategy<Value = ExtFields> {
    prop::collection::vec((text(), text()), 0..12).prop_map(|pairs| pairs.into_iter().collect())
}

fn command() -> impl Strategy<Value = RemotingCommand> {
    (
        prop_oneof![Just(SerializeType::Json), Just(SerializeType::RocketMq)],
        any::<i16>(),
        any::<i32>(),
        prop::sample::select(&LANGUAGES[..]),
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
        prop::option::of(text()),
        ext_fields(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(
                serialize_type,
                short_code,
                wide_code,
                language,
                version,
                opaque,
                flag,
                remark,
                ext,
                body,
            )| {
                // JSON carries any int code; ROCKETMQ only shorts.
                let code = match serialize_type {
                    SerializeType::Json => wide_code,
                    SerializeType::RocketMq => i32::from(short_code),
                };
                RemotingCommand {
                    code,
                    language,
                    version: i32::from(version),
                    opaque,
                    flag,
                    remark,
                    ext_fields: ext,
                    serialize_type,
                    body: Bytes::from(body),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_command_round_trips(command in command()) {
        let mut src = BytesMut::new();
        command.encode(&mut src).unwrap();
        let decoded = decode_frame(&mut src).unwrap().expect("a whole frame");
        prop_assert!(src.is_empty());
        prop_assert_eq!(decoded, command);
    }

    #[test]
    fn encode_head_plus_body_equals_encode(command in command()) {
        let mut whole = BytesMut::new();
        command.encode(&mut whole).unwrap();
        let mut head = BytesMut::new();
        command.encode_head(&mut head).unwrap();
        head.extend_from_slice(&command.body);
        prop_assert_eq!(whole, head);
    }

    #[test]
    fn the_decoder_is_indifferent_to_read_boundaries(
        commands in prop::collection::vec(command(), 1..6),
        cuts in prop::collection::vec(1usize..40, 1..200),
    ) {
        let mut stream = BytesMut::new();
        for command in &commands {
            command.encode(&mut stream).unwrap();
        }
        let stream = stream.freeze();
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        let mut pos = 0;
        let mut cut_sizes = cuts.iter().cycle();
        while pos < stream.len() {
            let end = (pos + cut_sizes.next().unwrap()).min(stream.len());
            buffer.extend_from_slice(&stream[pos..end]);
            pos = end;
            while let Some(command) = decode_frame(&mut buffer).unwrap() {
                decoded.push(command);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(decoded, commands);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_consume_nothing(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut src = BytesMut::from(&bytes[..]);
        let before = src.len();
        match decode_frame(&mut src) {
            Ok(Some(_)) => prop_assert!(src.len() < before),
            Ok(None) | Err(_) => prop_assert_eq!(src.len(), before),
        }
    }
}
