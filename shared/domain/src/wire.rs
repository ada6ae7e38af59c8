//! String-backed enums: one name on the wire, in the database and in messages.

/// Declares a string-backed enum with its wire names, `as_str`, `FromStr`, `ALL`, and its
/// mapping to a `TEXT` column (with the `diesel` feature): a value the enum does not know is a read error naming the
/// column's type, never a silent default.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[cfg_attr(
            feature = "diesel",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
            diesel(sql_type = diesel::sql_types::Text)
        )]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The accepted names, for error messages.
            pub fn names() -> String {
                [$($wire),+].join(", ")
            }

            /// A request's `field`, trimmed and in any case; an unknown name is a validation
            /// error that lists the accepted ones.
            pub fn parse_field(field: &str, raw: &str) -> crate::error::ServiceResult<Self> {
                raw.trim().to_lowercase().parse().map_err(|()| {
                    crate::error::ServiceError::invalid_field(
                        field,
                        format!("Unknown {field} {raw:?}; use one of {}", Self::names()),
                    )
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        $crate::wire::text_column!($name);
    };
}
pub(crate) use wire_enum;

/// Stores a type in a Text column as its `Display` writes it and reads it back with its
/// `FromStr` (whose error displays why the text is not one).
macro_rules! text_column {
    ($name:ty) => {
        #[cfg(feature = "diesel")]
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                use std::io::Write;
                write!(out, "{self}")?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        #[cfg(feature = "diesel")]
        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let raw = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                raw.parse::<$name>().map_err(|why| {
                    let why = $crate::wire::Unparsed::why(why);
                    format!("{} {raw:?} in the database {why}", stringify!($name)).into()
                })
            }
        }
    };
}
pub(crate) use text_column;

/// Why a stored text is not a value, for [`text_column`]'s error: a wire enum's parse says
/// nothing (`()`), the others say why.
pub(crate) trait Unparsed {
    fn why(self) -> String;
}

impl Unparsed for () {
    fn why(self) -> String {
        "is not a known value".to_owned()
    }
}

impl Unparsed for String {
    fn why(self) -> String {
        self
    }
}
