//! Checks a producer makes before anything is sent (Java `Validators`), so that a bad message
//! fails with a clear error instead of a broker error code.

use crate::error::ClientError;
use crate::message::Message;

/// Longest topic name (V1 records store its length in one byte).
pub const TOPIC_MAX_LEN: usize = 127;

/// Topic names: 1–127 characters from `[A-Za-z0-9%|_-]`.
pub fn validate_topic(topic: &str) -> Result<(), ClientError> {
    if topic.is_empty() {
        return Err(ClientError::InvalidMessage("topic is empty".to_string()));
    }
    if topic.len() > TOPIC_MAX_LEN {
        return Err(ClientError::InvalidMessage(format!(
            "topic is {} characters, at most {TOPIC_MAX_LEN} allowed",
            topic.len()
        )));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(ClientError::InvalidMessage(format!(
            "topic {topic:?} contains {bad:?}; allowed are letters, digits, %, |, _ and -"
        )));
    }
    Ok(())
}

/// A sendable message: valid topic, non-empty body no larger than `max_body_bytes`.
pub fn validate_message(message: &Message, max_body_bytes: usize) -> Result<(), ClientError> {
    validate_topic(&message.topic)?;
    if message.body.is_empty() {
        return Err(ClientError::InvalidMessage(
            "message body is empty".to_string(),
        ));
    }
    if message.body.len() > max_body_bytes {
        return Err(ClientError::InvalidMessage(format!(
            "message body is {} bytes, at most {max_body_bytes} allowed",
            message.body.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(validate_topic("Topic_A-1%|x").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("has space").is_err());
        assert!(validate_topic(&"t".repeat(127)).is_ok());
        assert!(validate_topic(&"t".repeat(128)).is_err());
    }

    #[test]
    fn bodies() {
        assert!(validate_message(&Message::new("T", "x"), 1).is_ok());
        assert!(validate_message(&Message::new("T", ""), 1).is_err());
        assert!(validate_message(&Message::new("T", "xy"), 1).is_err());
    }
}
