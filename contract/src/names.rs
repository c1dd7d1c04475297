//! Enums that are named on command lines and in files: [`named_enum!`](crate::named_enum) gives
//! one its names, `Display` and `FromStr`.

/// `names` as a list for a message: `"a"`, `"a or b"`, `"a, b or c"`.
pub fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// For a fieldless enum whose variants each have a lower-case name and optional aliases:
/// `name()` (the name), `ALL` (every variant, in the order given), `Display` (the name) and
/// `FromStr` (the name or an alias, ASCII case-insensitive; otherwise an error message such as
/// `unknown colour range "x" (expected limited or full)`).
///
/// ```
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// enum Range {
///     Limited,
///     Full,
/// }
/// savl_contract::named_enum!(Range, "colour range", {
///     Limited => "limited" | "tv",
///     Full => "full",
/// });
/// assert_eq!("TV".parse::<Range>(), Ok(Range::Limited));
/// assert_eq!(Range::Full.to_string(), "full");
/// assert_eq!(Range::ALL, [Range::Limited, Range::Full]);
/// assert_eq!(
///     "x".parse::<Range>().unwrap_err(),
///     r#"unknown colour range "x" (expected limited or full)"#
/// );
/// ```
#[macro_export]
macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// The name used on the command line and in files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// Every variant.
            pub const ALL: [$ty; [$($name),+].len()] = [$(Self::$variant),+];
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($name $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(format!(
                        concat!("unknown ", $what, " {:?} (expected {})"),
                        s,
                        $crate::names::one_of(&[$($name),+])
                    )),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::one_of;

    #[test]
    fn lists_read_as_a_sentence() {
        assert_eq!(one_of(&[]), "");
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b"]), "a or b");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }
}
