//! `LanguageCode` and `SerializeType`: the two small enums of the command header.

/// The sender's language, by name in JSON headers and by byte in ROCKETMQ headers
/// (reference §1.2). Unknown names and bytes decode as [`LanguageCode::Other`], never as an
/// error: clients add languages (RUST, NODE_JS) faster than servers learn them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LanguageCode {
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
}

/// Every language with its wire byte and JSON name; the byte is the index.
const LANGUAGES: [(LanguageCode, &str); 14] = [
    (LanguageCode::Java, "JAVA"),
    (LanguageCode::Cpp, "CPP"),
    (LanguageCode::Dotnet, "DOTNET"),
    (LanguageCode::Python, "PYTHON"),
    (LanguageCode::Delphi, "DELPHI"),
    (LanguageCode::Erlang, "ERLANG"),
    (LanguageCode::Ruby, "RUBY"),
    (LanguageCode::Other, "OTHER"),
    (LanguageCode::Http, "HTTP"),
    (LanguageCode::Go, "GO"),
    (LanguageCode::Php, "PHP"),
    (LanguageCode::Oms, "OMS"),
    (LanguageCode::Rust, "RUST"),
    (LanguageCode::NodeJs, "NODE_JS"),
];

impl LanguageCode {
    /// The ROCKETMQ header byte.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The language for a ROCKETMQ header byte; unknown bytes are `Other`.
    pub fn from_byte(byte: u8) -> Self {
        LANGUAGES
            .get(usize::from(byte))
            .map_or(LanguageCode::Other, |(code, _)| *code)
    }

    /// The JSON header name (`"JAVA"`, `"NODE_JS"`, ...).
    pub const fn name(self) -> &'static str {
        LANGUAGES[self as usize].1
    }

    /// The language for a JSON header name, ignoring ASCII case; unknown names are `Other`.
    pub fn from_name(name: &str) -> Self {
        LANGUAGES
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map_or(LanguageCode::Other, |(code, _)| *code)
    }
}

// The byte of each language is its position in LANGUAGES; pin that relationship.
const _: () = {
    let mut i = 0;
    while i < LANGUAGES.len() {
        assert!(LANGUAGES[i].0 as usize == i);
        i += 1;
    }
};

/// How the command header is serialized: the high byte of the frame's header-length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// Byte 0: a JSON object. Every client can read it; the default.
    #[default]
    Json,
    /// Byte 1: the compact binary header (reference §1.4). Java and Go only.
    RocketMq,
}

impl SerializeType {
    /// The wire byte.
    pub const fn byte(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The type for a wire byte, `None` for anything but 0 and 1.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The name Java uses (`"JSON"`, `"ROCKETMQ"`).
    pub const fn name(self) -> &'static str {
        match self {
            SerializeType::Json => "JSON",
            SerializeType::RocketMq => "ROCKETMQ",
        }
    }
}
