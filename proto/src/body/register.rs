//! REGISTER_BROKER body, plain JSON or the compressed form (reference §2.11, pitfall 19).
//!
//! Compressed form: one zlib stream which, inflated, is a sequence of big-endian length-prefixed
//! parts:
//!
//! ```text
//! int len, DataVersion JSON
//! int topicCount, then per topic: int len, "name read write perm filterType attributesJSON"
//! int len, filterServerList JSON
//! int mappingCount, then per mapping: int len, TopicQueueMappingInfo JSON   (5.x brokers only)
//! ```
//!
//! The stream is inflated to its end before parsing (a single read into an empty buffer, the
//! rocketmq-rust bug, sees nothing). Static-topic mappings are read past and dropped: ringmq has
//! no static topics. The compressed topic line carries no `order` / `topicSysFlag`, so those
//! decode as their defaults, as in Java.

use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use super::topic::{DataVersion, TopicConfig, TopicConfigSerializeWrapper, TopicFilterType};
use super::{decode_lenient, BodyError, JsonBody};

/// Bound on the inflated size of a compressed body. A 16 MiB frame of zeros inflates to
/// gigabytes; a real broker's table of tens of thousands of topics stays far below this.
pub const INFLATED_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What a broker registers: its topic table and its filter servers (`RegisterBrokerBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RegisterBrokerBody {
    pub filter_server_list: Vec<String>,
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
}

impl JsonBody for RegisterBrokerBody {}

impl RegisterBrokerBody {
    /// Decodes a body as the request header's `compressed` flag says it is encoded.
    pub fn decode(body: &[u8], compressed: bool) -> Result<Self, BodyError> {
        if compressed {
            Self::decode_compressed(body)
        } else {
            Self::from_json(body)
        }
    }

    /// Encodes as plain JSON or the compressed form.
    pub fn encode(&self, compressed: bool) -> Vec<u8> {
        if compressed {
            self.encode_compressed()
        } else {
            self.to_json().into_bytes()
        }
    }

    /// The compressed form (zlib, best compression, as Java's broker writes it).
    pub fn encode_compressed(&self) -> Vec<u8> {
        let wrapper = &self.topic_config_serialize_wrapper;
        let mut plain = Vec::with_capacity(64 + 64 * wrapper.topic_config_table.len());
        put_part(&mut plain, wrapper.data_version.to_json().as_bytes());
        put_i32(&mut plain, len_i32(wrapper.topic_config_table.len()));
        for config in wrapper.topic_config_table.values() {
            put_part(&mut plain, topic_config_line(config).as_bytes());
        }
        let filter_servers = serde_json::to_string(&self.filter_server_list)
            .expect("a list of strings always serializes");
        put_part(&mut plain, filter_servers.as_bytes());
        put_i32(&mut plain, 0); // no static-topic mappings
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder
            .write_all(&plain)
            .expect("writing into a Vec cannot fail");
        encoder.finish().expect("writing into a Vec cannot fail")
    }

    /// Inflates the whole stream, then parses its parts.
    pub fn decode_compressed(body: &[u8]) -> Result<Self, BodyError> {
        let mut plain = Vec::with_capacity(body.len() * 4);
        ZlibDecoder::new(body)
            .take(INFLATED_MAX_BYTES + 1)
            .read_to_end(&mut plain)
            .map_err(BodyError::Inflate)?;
        if plain.len() as u64 > INFLATED_MAX_BYTES {
            return Err(BodyError::Inflate(std::io::Error::other(format!(
                "inflates to more than {INFLATED_MAX_BYTES} bytes"
            ))));
        }
        let mut reader = PartReader { rest: &plain };
        let data_version = DataVersion::from_json(reader.part("dataVersion")?)?;
        let topic_count = reader.count("topicCount")?;
        let mut wrapper = TopicConfigSerializeWrapper {
            data_version,
            ..TopicConfigSerializeWrapper::default()
        };
        for _ in 0..topic_count {
            let line = utf8(reader.part("topicConfig")?, "topicConfig")?;
            let config = parse_topic_config_line(line)?;
            wrapper
                .topic_config_table
                .insert(config.topic_name.clone(), config);
        }
        let filter_server_list: Vec<String> = decode_lenient(reader.part("filterServerList")?)?;
        // Brokers before 5.0 end here; 5.x brokers append static-topic mappings.
        if !reader.rest.is_empty() {
            let mapping_count = reader.count("mappingCount")?;
            for _ in 0..mapping_count {
                reader.part("topicQueueMappingInfo")?;
            }
        }
        Ok(Self {
            filter_server_list,
            topic_config_serialize_wrapper: wrapper,
        })
    }
}

/// `name read write perm filterType attributesJSON`, Java's `TopicConfig.encode`.
fn topic_config_line(config: &TopicConfig) -> String {
    let attributes =
        serde_json::to_string(&config.attributes).expect("a string map always serializes");
    format!(
        "{} {} {} {} {} {}",
        config.topic_name,
        config.read_queue_nums,
        config.write_queue_nums,
        config.perm,
        config.topic_filter_type.as_str(),
        attributes
    )
}

/// Parses a compressed-form topic line. The attributes JSON is optional (older brokers) and may
/// itself contain spaces, so the line is split into at most six fields.
fn parse_topic_config_line(line: &str) -> Result<TopicConfig, BodyError> {
    let bad = |reason| BodyError::TopicConfigLine {
        line: line.to_owned(),
        reason,
    };
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    if fields.len() < 5 {
        return Err(bad("fewer than 5 fields"));
    }
    let number = |text: &str| {
        text.parse::<i32>()
            .map_err(|_| bad("queue count or perm is not an int"))
    };
    let mut config = TopicConfig {
        topic_name: fields[0].to_owned(),
        read_queue_nums: number(fields[1])?,
        write_queue_nums: number(fields[2])?,
        perm: number(fields[3])?,
        topic_filter_type: TopicFilterType::from_name(fields[4]),
        ..TopicConfig::default()
    };
    if let Some(attributes) = fields.get(5) {
        config.attributes = decode_lenient(attributes.as_bytes())?;
    }
    Ok(config)
}

/// Reads big-endian length-prefixed parts off the inflated bytes.
struct PartReader<'a> {
    rest: &'a [u8],
}

impl<'a> PartReader<'a> {
    fn take(&mut self, field: &'static str, need: usize) -> Result<&'a [u8], BodyError> {
        if self.rest.len() < need {
            return Err(BodyError::Truncated {
                field,
                need,
                have: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(need);
        self.rest = tail;
        Ok(head)
    }

    fn count(&mut self, field: &'static str) -> Result<usize, BodyError> {
        let bytes = self.take(field, 4)?;
        let length = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        usize::try_from(length).map_err(|_| BodyError::NegativeLength { field, length })
    }

    fn part(&mut self, field: &'static str) -> Result<&'a [u8], BodyError> {
        let length = self.count(field)?;
        self.take(field, length)
    }
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, BodyError> {
    std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8 { field })
}

fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_part(out: &mut Vec<u8>, bytes: &[u8]) {
    put_i32(out, len_i32(bytes.len()));
    out.extend_from_slice(bytes);
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("a register body part is far below 2 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_line_without_attributes_is_accepted() {
        let config = parse_topic_config_line("T1 4 8 6 MULTI_TAG").unwrap();
        assert_eq!(config.topic_name, "T1");
        assert_eq!((config.read_queue_nums, config.write_queue_nums), (4, 8));
        assert_eq!(config.perm, 6);
        assert_eq!(config.topic_filter_type, TopicFilterType::MultiTag);
        assert!(config.attributes.is_empty());
    }

    #[test]
    fn topic_line_attributes_may_contain_spaces() {
        let config = parse_topic_config_line(r#"T1 1 1 6 SINGLE_TAG {"+a":"x y"}"#).unwrap();
        assert_eq!(config.attributes.get("+a").map(String::as_str), Some("x y"));
    }

    #[test]
    fn bad_topic_lines_are_rejected() {
        for line in [
            "T1 4 8 6",
            "T1 x 8 6 SINGLE_TAG",
            "T1 4 8 6 SINGLE_TAG {bad",
        ] {
            assert!(parse_topic_config_line(line).is_err(), "{line}");
        }
    }
}
