//! Enums read by their Java name or ordinal, keeping names this version does not know.

/// Declares an enum serialized by its Java name, whose unknown names decode to `Other(name)` and
/// encode back verbatim, so a newer client's value never fails a whole body.
macro_rules! lenient_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A name this version does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The Java enum name.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(name) => name,
                }
            }

            /// Maps a Java enum name; unknown names become `Other`.
            pub fn from_name(name: &str) -> Self {
                match name {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            /// Accepts the Java name, a Java ordinal (fastjson reads both), or `null` (the
            /// default). Variants are declared in Java ordinal order for that reason.
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$( $text, )+];
                match Option::<serde_json::Value>::deserialize(deserializer)? {
                    None | Some(serde_json::Value::Null) => Ok(Self::default()),
                    Some(serde_json::Value::String(name)) => Ok(Self::from_name(&name)),
                    Some(serde_json::Value::Number(number)) => Ok(number
                        .as_u64()
                        .and_then(|ordinal| NAMES.get(ordinal as usize))
                        .map(|name| Self::from_name(name))
                        .unwrap_or_else(|| Self::Other(number.to_string()))),
                    Some(other) => Err(serde::de::Error::custom(format!(
                        "{}: expected a name or an ordinal, got {}",
                        stringify!($name),
                        other
                    ))),
                }
            }
        }
    };
}

pub(crate) use lenient_enum;
