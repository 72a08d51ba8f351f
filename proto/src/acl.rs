//! The ACL 1.0 request signature of RocketMQ 4.x (`AclClientRPCHook`, `PlainAccessValidator`,
//! `AclUtils.combineRequestContent`, `AclSigner`).
//!
//! The signed content is the values of every ext field except `Signature` and
//! `_UNIQUE_KEY_QUERY`, in ascending key order, concatenated as UTF-8, followed by the body. The
//! signature is `Base64(HmacSHA1(secretKey, content))`. `AccessKey` is itself an ext field, so its
//! value takes part. Keys sort as Java's `TreeMap<String, _>` sorts them (UTF-16 code units),
//! which for keys without characters above U+FFFF is the byte order `str` uses; RocketMQ's
//! header field names are ASCII.
//!
//! Both sides stream the content into the MAC: no buffer holds the concatenation, so a
//! 4 MiB body is not copied to be signed or verified.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::command::ExtFields;

/// Ext field carrying the account's access key (`SessionCredentials.ACCESS_KEY`).
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field carrying the Base64 signature (`SessionCredentials.SIGNATURE`).
pub const SIGNATURE: &str = "Signature";
/// Ext field carrying an STS token (`SessionCredentials.SECURITY_TOKEN`); signed like any other.
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// Ext field the Java client adds to unique-key queries outside its custom header, and which the
/// broker therefore leaves out of the signed content (`MixAll.UNIQUE_MSG_QUERY_FLAG`).
pub const UNIQUE_MSG_QUERY_FLAG: &str = "_UNIQUE_KEY_QUERY";

/// Headers hold up to ~20 fields; up to this many are sorted in a stack array, more (only a
/// hostile or unusual request) in a heap vector.
const SORT_ON_STACK_MAX_FIELDS: usize = 32;

type HmacSha1 = Hmac<Sha1>;

/// Whether `key` takes part in the signed content.
fn is_signed_field(key: &str) -> bool {
    key != SIGNATURE && key != UNIQUE_MSG_QUERY_FLAG
}

/// Feeds the signed content of (`fields`, `body`) into `mac`.
fn feed_content(mac: &mut HmacSha1, fields: &ExtFields, body: &[u8]) {
    let mut stack: [(&str, &str); SORT_ON_STACK_MAX_FIELDS] = [("", ""); SORT_ON_STACK_MAX_FIELDS];
    let mut heap: Vec<(&str, &str)> = Vec::new();
    let signed = fields.iter().filter(|(k, _)| is_signed_field(k));
    let sorted: &mut [(&str, &str)] = if fields.len() <= SORT_ON_STACK_MAX_FIELDS {
        let mut n = 0;
        for entry in signed {
            stack[n] = entry;
            n += 1;
        }
        &mut stack[..n]
    } else {
        heap.extend(signed);
        &mut heap
    };
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (_, value) in sorted.iter() {
        mac.update(value.as_bytes());
    }
    mac.update(body);
}

fn new_mac(secret_key: &str) -> HmacSha1 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    HmacSha1::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts any key length")
}

/// The signature of a request with these ext fields and body, as Java's `AclSigner` computes it.
/// A `Signature` field already present is ignored.
pub fn sign(secret_key: &str, fields: &ExtFields, body: &[u8]) -> String {
    let mut mac = new_mac(secret_key);
    feed_content(&mut mac, fields, body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Adds `AccessKey` and then `Signature` to `fields`, signing everything else in them and the
/// body: what Java's `AclClientRPCHook.doBeforeRequest` does.
pub fn sign_request(access_key: &str, secret_key: &str, fields: &mut ExtFields, body: &[u8]) {
    fields.insert(ACCESS_KEY, access_key);
    let signature = sign(secret_key, fields, body);
    fields.insert(SIGNATURE, signature);
}

/// Whether `signature` (the request's `Signature` field) is the right one for these fields and
/// body under `secret_key`. The MAC comparison is constant-time; a signature that is not
/// canonical Base64 of 20 bytes never matches (Java compares the Base64 text, so only the
/// canonical form could match there either).
pub fn verify(secret_key: &str, fields: &ExtFields, body: &[u8], signature: &str) -> bool {
    let mut decoded = [0u8; 20];
    match STANDARD.decode_slice(signature.as_bytes(), &mut decoded) {
        Ok(20) => {}
        _ => return false,
    }
    let mut mac = new_mac(secret_key);
    feed_content(&mut mac, fields, body);
    mac.verify_slice(&decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> ExtFields {
        pairs.iter().copied().collect()
    }

    // Golden vectors computed outside this code, with the command shown, e.g.
    //   printf '%s' 'RocketMQtopicA' | openssl dgst -sha1 -hmac 12345678 -binary | base64
    // The content is the values in key order (AccessKey < a < b < ...), then the body.

    #[test]
    fn golden_access_key_only_no_body() {
        // printf '%s' 'RocketMQ' | openssl dgst -sha1 -hmac 12345678 -binary | base64
        let f = fields(&[("AccessKey", "RocketMQ")]);
        assert_eq!(sign("12345678", &f, b""), "IUc8rrO/0gDch8CjObLQsW2rsiA=");
    }

    #[test]
    fn golden_send_v2_header_and_body() {
        // Keys sorted: AccessKey, a, b, c, d => values RocketMQ, PG, TopicTest, TBW102, 4
        // printf '%s' 'RocketMQPGTopicTestTBW1024hello' | openssl dgst -sha1 -hmac 12345678 \
        //   -binary | base64
        let f = fields(&[
            ("b", "TopicTest"),
            ("a", "PG"),
            ("d", "4"),
            ("c", "TBW102"),
            ("AccessKey", "RocketMQ"),
        ]);
        assert_eq!(
            sign("12345678", &f, b"hello"),
            "1Nw7wPVK2eAkDjGJpjI89HxXeb0="
        );
    }

    #[test]
    fn golden_ignores_signature_and_unique_key_flag() {
        // Keys sorted: AccessKey, key, topic (Signature and _UNIQUE_KEY_QUERY left out)
        // printf '%s' 'rocketmq2k1TopicTest' | openssl dgst -sha1 -hmac 'secret-key-2' -binary \
        //   | base64
        let f = fields(&[
            ("topic", "TopicTest"),
            ("AccessKey", "rocketmq2"),
            ("key", "k1"),
            ("_UNIQUE_KEY_QUERY", "true"),
            ("Signature", "whatever"),
        ]);
        assert_eq!(
            sign("secret-key-2", &f, b""),
            "kVTBSMbimgy+lrxLdNxuNxDcibc="
        );
    }

    #[test]
    fn sign_request_then_verify_round_trips_and_detects_tampering() {
        let mut f = fields(&[("topic", "T"), ("queueId", "3")]);
        sign_request("RocketMQ", "12345678", &mut f, b"body");
        let sig = f.get(SIGNATURE).unwrap().to_string();
        assert!(verify("12345678", &f, b"body", &sig));
        assert!(!verify("12345679", &f, b"body", &sig));
        assert!(!verify("12345678", &f, b"bodz", &sig));
        let mut tampered = f.clone();
        tampered.insert("queueId", "4");
        assert!(!verify("12345678", &tampered, b"body", &sig));
        assert!(!verify("12345678", &f, b"body", "not base64!"));
        assert!(!verify("12345678", &f, b"body", ""));
    }

    #[test]
    fn many_fields_sort_on_the_heap_the_same_way() {
        let pairs: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{i:02}"), format!("v{i}")))
            .collect();
        let f: ExtFields = pairs.iter().rev().cloned().collect();
        let mut mac = new_mac("key");
        for (_, v) in &pairs {
            mac.update(v.as_bytes());
        }
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sign("key", &f, b""), expected);
    }
}
