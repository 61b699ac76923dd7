//! The Puppet data types used in task metadata (`"type": "Optional[String[1]]"`)
//! and a checker for JSON parameter values against them.
//!
//! Covered: Any, Data, ScalarData, Scalar, String, Integer, Float, Numeric,
//! Boolean, Undef, NotUndef, Optional, Variant, Enum, Pattern, Array, Tuple,
//! Hash, Struct, plus type aliases (`Stdlib::...`), which accept anything
//! because their definitions live in Puppet code we do not evaluate. Pattern
//! checks that the value is a string but does not evaluate the regexes (no
//! regex engine in the dependency tree).

use serde_json::Value;

/// A parsed Puppet type.
#[derive(Debug, Clone, PartialEq)]
pub enum PType {
    /// Anything, including undef.
    Any,
    /// Any JSON value but null (`NotUndef`), or anything a JSON document can
    /// hold (`Data`, which includes undef).
    Data { allow_null: bool },
    /// String, Integer, Float or Boolean.
    Scalar,
    /// `String[min, max]` (character counts).
    String { min: i64, max: i64 },
    /// `Integer[min, max]`.
    Integer { min: i64, max: i64 },
    /// `Float[min, max]` / `Numeric`.
    Number {
        min: f64,
        max: f64,
        integer_ok: bool,
    },
    /// `Boolean`.
    Boolean,
    /// `Undef`.
    Undef,
    /// `Optional[T]`.
    Optional(Box<PType>),
    /// `Variant[A, B, ...]`.
    Variant(Vec<PType>),
    /// `Enum['a', 'b']`.
    Enum(Vec<String>),
    /// `Pattern[/re/]`: strings (regexes are not evaluated).
    Pattern,
    /// `Array[T, min, max]`.
    Array {
        elem: Box<PType>,
        min: i64,
        max: i64,
    },
    /// `Tuple[A, B]`.
    Tuple(Vec<PType>),
    /// `Hash[K, V, min, max]` (keys are always strings in JSON).
    Hash {
        value: Box<PType>,
        min: i64,
        max: i64,
    },
    /// `Struct[{a => T, Optional[b] => U}]`.
    Struct(Vec<(String, bool, PType)>),
    /// A type alias we cannot resolve: accepts anything.
    Alias(String),
}

/// A token of the type language.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Regex,
    Default,
    Open,
    Close,
    Comma,
    BraceOpen,
    BraceClose,
    Arrow,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '[' => {
                out.push(Tok::Open);
                i += 1;
            }
            ']' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '{' => {
                out.push(Tok::BraceOpen);
                i += 1;
            }
            '}' => {
                out.push(Tok::BraceClose);
                i += 1;
            }
            '=' if chars.get(i + 1) == Some(&'>') => {
                out.push(Tok::Arrow);
                i += 2;
            }
            '\'' | '"' => {
                let q = c;
                let mut v = String::new();
                i += 1;
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated string".into());
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '/' => {
                i += 1;
                while i < chars.len() && chars[i] != '/' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated regex".into());
                }
                i += 1;
                out.push(Tok::Regex);
            }
            '-' | '0'..='9' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let t: String = chars[start..i].iter().collect();
                if t.contains('.') {
                    out.push(Tok::Float(
                        t.parse().map_err(|_| format!("bad number {t}"))?,
                    ));
                } else {
                    out.push(Tok::Int(t.parse().map_err(|_| format!("bad number {t}"))?));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '_'
                        || (chars[i] == ':' && chars.get(i + 1) == Some(&':')))
                {
                    i += if chars[i] == ':' { 2 } else { 1 };
                }
                let t: String = chars[start..i].iter().collect();
                out.push(if t == "default" {
                    Tok::Default
                } else {
                    Tok::Name(t)
                });
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

/// A type argument: a type, a number, a string, a regex or `default`.
#[derive(Debug, Clone)]
enum Arg {
    Type(PType),
    Int(i64),
    Float(f64),
    Str(String),
    Regex,
    Default,
    Struct(Vec<(String, bool, PType)>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        match self.next() {
            Some(ref got) if got == t => Ok(()),
            got => Err(format!("expected {t:?}, found {got:?}")),
        }
    }

    fn ty(&mut self) -> Result<PType, String> {
        let name = match self.next() {
            Some(Tok::Name(n)) => n,
            t => return Err(format!("expected a type name, found {t:?}")),
        };
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::Open) {
            self.next();
            loop {
                if self.peek() == Some(&Tok::Close) {
                    self.next();
                    break;
                }
                args.push(self.arg()?);
                match self.next() {
                    Some(Tok::Comma) => {}
                    Some(Tok::Close) => break,
                    t => return Err(format!("expected ',' or ']', found {t:?}")),
                }
            }
        }
        build(&name, args)
    }

    fn arg(&mut self) -> Result<Arg, String> {
        Ok(match self.peek() {
            Some(Tok::Int(_)) | Some(Tok::Float(_)) | Some(Tok::Str(_)) | Some(Tok::Regex)
            | Some(Tok::Default) => match self.next() {
                Some(Tok::Int(n)) => Arg::Int(n),
                Some(Tok::Float(f)) => Arg::Float(f),
                Some(Tok::Str(s)) => Arg::Str(s),
                Some(Tok::Regex) => Arg::Regex,
                _ => Arg::Default,
            },
            Some(Tok::Name(n)) if n.starts_with(|c: char| c.is_ascii_lowercase()) => {
                // Bare words, as in Enum[install, remove].
                let n = n.clone();
                self.next();
                Arg::Str(n)
            }
            Some(Tok::BraceOpen) => {
                self.next();
                let mut fields = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::BraceClose) {
                        self.next();
                        break;
                    }
                    let (key, optional) = match self.next() {
                        Some(Tok::Str(s)) => (s, false),
                        Some(Tok::Name(n)) if n == "Optional" => {
                            self.expect(&Tok::Open)?;
                            let key = match self.next() {
                                Some(Tok::Str(s)) | Some(Tok::Name(s)) => s,
                                t => return Err(format!("expected a key, found {t:?}")),
                            };
                            self.expect(&Tok::Close)?;
                            (key, true)
                        }
                        Some(Tok::Name(n)) => (n, false),
                        t => return Err(format!("expected a struct key, found {t:?}")),
                    };
                    self.expect(&Tok::Arrow)?;
                    let t = self.ty()?;
                    let optional = optional || matches!(t, PType::Optional(_));
                    fields.push((key, optional, t));
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::BraceClose) => break,
                        t => return Err(format!("expected ',' or '}}', found {t:?}")),
                    }
                }
                Arg::Struct(fields)
            }
            _ => Arg::Type(self.ty()?),
        })
    }
}

fn bound_i(args: &[Arg], i: usize, default: i64) -> Result<i64, String> {
    match args.get(i) {
        None | Some(Arg::Default) => Ok(default),
        Some(Arg::Int(n)) => Ok(*n),
        Some(a) => Err(format!("expected an integer bound, found {a:?}")),
    }
}

fn bound_f(args: &[Arg], i: usize, default: f64) -> Result<f64, String> {
    match args.get(i) {
        None | Some(Arg::Default) => Ok(default),
        Some(Arg::Int(n)) => Ok(*n as f64),
        Some(Arg::Float(f)) => Ok(*f),
        Some(a) => Err(format!("expected a numeric bound, found {a:?}")),
    }
}

fn type_arg(args: &[Arg], i: usize) -> Result<PType, String> {
    match args.get(i) {
        None => Ok(PType::Any),
        Some(Arg::Type(t)) => Ok(t.clone()),
        Some(a) => Err(format!("expected a type, found {a:?}")),
    }
}

fn build(name: &str, args: Vec<Arg>) -> Result<PType, String> {
    Ok(match name {
        "Any" => PType::Any,
        "Data" | "RichData" => PType::Data { allow_null: true },
        "NotUndef" => match args.first() {
            Some(Arg::Type(t)) => t.clone(),
            _ => PType::Data { allow_null: false },
        },
        "Scalar" | "ScalarData" => PType::Scalar,
        "String" => PType::String {
            min: bound_i(&args, 0, 0)?,
            max: bound_i(&args, 1, i64::MAX)?,
        },
        "Integer" => PType::Integer {
            min: bound_i(&args, 0, i64::MIN)?,
            max: bound_i(&args, 1, i64::MAX)?,
        },
        "Float" | "Numeric" => PType::Number {
            min: bound_f(&args, 0, f64::NEG_INFINITY)?,
            max: bound_f(&args, 1, f64::INFINITY)?,
            integer_ok: true,
        },
        "Boolean" => PType::Boolean,
        "Undef" => PType::Undef,
        "Optional" => PType::Optional(Box::new(match args.first() {
            Some(Arg::Str(s)) => PType::Enum(vec![s.clone()]),
            _ => type_arg(&args, 0)?,
        })),
        "Variant" => PType::Variant(
            (0..args.len())
                .map(|i| type_arg(&args, i))
                .collect::<Result<_, _>>()?,
        ),
        "Enum" => PType::Enum(
            args.iter()
                .map(|a| match a {
                    Arg::Str(s) => Ok(s.clone()),
                    Arg::Type(PType::Alias(n)) => Ok(n.clone()),
                    a => Err(format!("Enum takes strings, found {a:?}")),
                })
                .collect::<Result<_, _>>()?,
        ),
        "Pattern" => PType::Pattern,
        "Array" => PType::Array {
            elem: Box::new(type_arg(&args, 0)?),
            min: bound_i(&args, 1, 0)?,
            max: bound_i(&args, 2, i64::MAX)?,
        },
        "Tuple" => PType::Tuple(
            args.iter()
                .filter_map(|a| match a {
                    Arg::Type(t) => Some(t.clone()),
                    _ => None,
                })
                .collect(),
        ),
        "Hash" => {
            let value = if args.len() >= 2 {
                type_arg(&args, 1)?
            } else {
                PType::Any
            };
            let (min, max) = if args.len() >= 2 {
                (bound_i(&args, 2, 0)?, bound_i(&args, 3, i64::MAX)?)
            } else {
                (0, i64::MAX)
            };
            PType::Hash {
                value: Box::new(value),
                min,
                max,
            }
        }
        "Struct" => match args.into_iter().next() {
            Some(Arg::Struct(f)) => PType::Struct(f),
            _ => return Err("Struct takes a {key => Type} hash".into()),
        },
        other if other.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => {
            PType::Alias(other.to_owned())
        }
        other => return Err(format!("{other:?} is not a type name")),
    })
}

/// Parses a Puppet type string.
pub fn parse(s: &str) -> Result<PType, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let t = p.ty()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing text after the type in {s:?}"));
    }
    Ok(t)
}

impl PType {
    /// Whether a missing parameter is fine.
    pub fn accepts_missing(&self) -> bool {
        match self {
            PType::Any | PType::Optional(_) | PType::Undef | PType::Alias(_) => true,
            PType::Data { allow_null } => *allow_null,
            PType::Variant(v) => v.iter().any(PType::accepts_missing),
            _ => false,
        }
    }

    /// Whether `v` is an instance of this type.
    pub fn matches(&self, v: &Value) -> bool {
        match self {
            PType::Any | PType::Alias(_) => true,
            PType::Data { allow_null } => *allow_null || !v.is_null(),
            PType::Scalar => v.is_string() || v.is_number() || v.is_boolean(),
            PType::String { min, max } => v.as_str().is_some_and(|s| {
                let n = s.chars().count() as i64;
                n >= *min && n <= *max
            }),
            PType::Integer { min, max } => v.as_i64().is_some_and(|n| n >= *min && n <= *max),
            PType::Number {
                min,
                max,
                integer_ok,
            } => (*integer_ok || !v.is_i64()) && v.as_f64().is_some_and(|n| n >= *min && n <= *max),
            PType::Boolean => v.is_boolean(),
            PType::Undef => v.is_null(),
            PType::Optional(t) => v.is_null() || t.matches(v),
            PType::Variant(ts) => ts.iter().any(|t| t.matches(v)),
            PType::Enum(vals) => v.as_str().is_some_and(|s| vals.iter().any(|e| e == s)),
            PType::Pattern => v.is_string(),
            PType::Array { elem, min, max } => v.as_array().is_some_and(|a| {
                let n = a.len() as i64;
                n >= *min && n <= *max && a.iter().all(|x| elem.matches(x))
            }),
            PType::Tuple(ts) => v.as_array().is_some_and(|a| {
                a.len() == ts.len() && a.iter().zip(ts).all(|(x, t)| t.matches(x))
            }),
            PType::Hash { value, min, max } => v.as_object().is_some_and(|o| {
                let n = o.len() as i64;
                n >= *min && n <= *max && o.values().all(|x| value.matches(x))
            }),
            PType::Struct(fields) => v.as_object().is_some_and(|o| {
                o.keys().all(|k| fields.iter().any(|(f, _, _)| f == k))
                    && fields.iter().all(|(k, optional, t)| match o.get(k) {
                        Some(x) => t.matches(x),
                        None => *optional,
                    })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(t: &str, v: Value) -> bool {
        parse(t).unwrap().matches(&v)
    }

    #[test]
    fn strings_integers_and_bounds() {
        assert!(ok("String", json!("")));
        assert!(!ok("String[1]", json!("")));
        assert!(ok("String[1,3]", json!("abc")));
        assert!(!ok("String[1,3]", json!("abcd")));
        assert!(!ok("String", json!(1)));
        assert!(ok("Integer[1]", json!(5)));
        assert!(!ok("Integer[1]", json!(0)));
        assert!(!ok("Integer", json!(1.5)));
        assert!(!ok("Integer", json!("1")));
        assert!(ok("Integer[default, 10]", json!(-4)));
        assert!(ok("Float", json!(1.5)));
        assert!(ok("Numeric", json!(2)));
    }

    #[test]
    fn optional_variant_enum_array_hash_struct() {
        assert!(ok("Optional[Boolean]", json!(null)));
        assert!(ok("Optional[Boolean]", json!(true)));
        assert!(!ok("Optional[Boolean]", json!("true")));
        let t = "Optional[Variant[String[1], Array[String[1]]]]";
        assert!(ok(t, json!("a")));
        assert!(ok(t, json!(["a", "b"])));
        assert!(!ok(t, json!(["a", ""])));
        assert!(!ok(t, json!(3)));
        assert!(ok("Enum['install', \"remove\"]", json!("remove")));
        assert!(!ok("Enum[install, remove]", json!("purge")));
        assert!(ok("Array[Integer, 1, 2]", json!([1])));
        assert!(!ok("Array[Integer, 1, 2]", json!([])));
        assert!(ok("Hash[String, Integer]", json!({"a": 1})));
        assert!(!ok("Hash[String, Integer]", json!({"a": "x"})));
        assert!(ok("Hash", json!({"a": [1]})));
        assert!(ok("Pattern[/^a\\/b$/]", json!("x")));
        let s = "Struct[{name => String, Optional[port] => Integer}]";
        assert!(ok(s, json!({"name": "x"})));
        assert!(!ok(s, json!({"name": "x", "other": 1})));
        assert!(ok("Stdlib::Absolutepath", json!("/x")));
        assert!(!ok("NotUndef", json!(null)));
        assert!(ok("Data", json!(null)));
    }

    #[test]
    fn missing_values_and_bad_types() {
        assert!(parse("Optional[String]").unwrap().accepts_missing());
        assert!(!parse("String").unwrap().accepts_missing());
        assert!(parse("String[").is_err());
        assert!(parse("string").is_err());
        assert!(parse("String]").is_err());
    }
}
