//! Reading scalar values: each reader reports a wrong type or an unparseable
//! value at the value's position, with the form that would be accepted.

use super::Decoder;
use crate::address::Address;
use crate::suggest::closest;
use crate::tree::{self, Value};
use crate::units::ByteSize;
use ipnet::Ipv4Net;
use std::fmt::Display;
use std::net::Ipv4Addr;
use std::str::FromStr;

impl Decoder<'_, '_> {
    pub(super) fn wrong_type(&mut self, node: &tree::Node, path: &str, expected: &str, fix: &str) {
        self.report.error_at(
            node.pos,
            path,
            format!("expected {expected}, found {}", node.value.kind()),
            fix,
        );
    }

    pub(super) fn string(&mut self, node: &tree::Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(
                    node,
                    path,
                    "a string",
                    "write a name such as `app1` (quote it if it looks like a number)",
                );
                None
            }
        }
    }

    /// A string parsed with `FromStr`; the parse error becomes the message.
    pub(super) fn parsed<T: FromStr>(
        &mut self,
        node: &tree::Node,
        path: &str,
        expected: &str,
    ) -> Option<T>
    where
        T::Err: Display,
    {
        let Value::Str(s) = &node.value else {
            self.wrong_type(node, path, expected, &format!("write {expected}"));
            return None;
        };
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.report
                    .error_at(node.pos, path, e.to_string(), format!("write {expected}"));
                None
            }
        }
    }

    pub(super) fn ipv4_net(&mut self, node: &tree::Node, path: &str) -> Option<Ipv4Net> {
        let expected = "an IPv4 CIDR such as 10.100.0.0/16";
        let Value::Str(s) = &node.value else {
            self.wrong_type(node, path, expected, &format!("write {expected}"));
            return None;
        };
        let parsed = s.parse::<Ipv4Net>();
        if parsed.is_err() {
            let hint = cidr_hint(s);
            self.report.error_at(
                node.pos,
                path,
                format!("`{s}` is not an IPv4 CIDR ({hint})"),
                format!("write {expected}"),
            );
        }
        parsed.ok()
    }

    pub(super) fn integer<T: TryFrom<i128>>(&mut self, node: &tree::Node, path: &str) -> Option<T> {
        let Value::Int(i) = node.value else {
            self.wrong_type(
                node,
                path,
                "a whole number",
                "write a whole number without quotes or units",
            );
            return None;
        };
        let v = T::try_from(i).ok();
        if v.is_none() {
            self.report.error_at(
                node.pos,
                path,
                format!("{i} is out of range"),
                "use a smaller, positive number",
            );
        }
        v
    }

    pub(super) fn size(&mut self, node: &tree::Node, path: &str) -> Option<ByteSize> {
        if let Value::Int(i) = node.value {
            self.report
                .error_at(node.pos, path, format!("{i} has no unit"), unit_hint(i));
            return None;
        }
        let fix = "write a size such as 4GiB or 512MiB (units B, K/Ki/KiB, M/Mi/MiB, G/Gi/GiB, T/Ti/TiB; all powers of 1024)";
        let Value::Str(s) = &node.value else {
            self.wrong_type(node, path, "a size such as 4GiB", fix);
            return None;
        };
        match s.parse::<ByteSize>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.report.error_at(node.pos, path, e.to_string(), fix);
                None
            }
        }
    }

    /// A host number (integer) or a literal IPv4 address (string).
    pub(super) fn address(&mut self, node: &tree::Node, path: &str) -> Option<Address> {
        let fix = "write a host number such as 10 (placed in the node network) or a full IPv4 address such as 192.168.64.10";
        match &node.value {
            Value::Int(i) => match u32::try_from(*i) {
                Ok(host) => Some(Address::Host(host)),
                Err(_) => {
                    self.report
                        .error_at(node.pos, path, format!("{i} is not a host number"), fix);
                    None
                }
            },
            Value::Str(s) => match s.parse::<Ipv4Addr>() {
                Ok(ip) => Some(Address::Ip(ip)),
                Err(_) => {
                    self.report.error_at(
                        node.pos,
                        path,
                        format!("`{s}` is not an IPv4 address"),
                        fix,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(node, path, "a host number or an IPv4 address", fix);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &tree::Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, path, "true or false", "write `true` or `false`");
                None
            }
        }
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        node: &tree::Node,
        path: &str,
        options: &[(&'static str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let one_of = names.join(" or ");
        let Value::Str(s) = &node.value else {
            self.wrong_type(
                node,
                path,
                &format!("one of {one_of}"),
                &format!("write {one_of}"),
            );
            return None;
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s.as_str()) {
            return Some(*v);
        }
        let fix = match closest(s, &names) {
            Some(c) => format!("did you mean `{c}`? write {one_of}"),
            None => format!("write {one_of}"),
        };
        self.report
            .error_at(node.pos, path, format!("`{s}` is not one of {one_of}"), fix);
        None
    }
}

/// Why a string is not an IPv4 CIDR, in the user's terms.
fn cidr_hint(s: &str) -> String {
    if s.contains(':') {
        return "only IPv4 is supported".to_owned();
    }
    let Some((addr, prefix)) = s.split_once('/') else {
        return "it needs a prefix length, e.g. /24".to_owned();
    };
    if addr.parse::<std::net::Ipv4Addr>().is_err() {
        return format!("`{addr}` is not an IPv4 address");
    }
    match prefix.parse::<u32>() {
        Ok(n) if n > 32 => format!("the prefix length /{n} is over 32"),
        _ => format!("`/{prefix}` is not a prefix length (0–32)"),
    }
}

/// The fix for a size written without a unit, guessing the unit from the
/// magnitude as a person would: `4` is GiB, `4096` MiB (memory), and a
/// number in the billions is bytes.
fn unit_hint(i: i128) -> String {
    const GIB: i128 = 1 << 30;
    match i {
        i if i >= GIB => match u64::try_from(i) {
            Ok(bytes) => format!("write the unit: {i} bytes is `{}`", ByteSize(bytes)),
            Err(_) => "write a size such as 4GiB".to_owned(),
        },
        i if i >= 1024 && i % 1024 == 0 => format!(
            "write the unit: `{i}MiB` (= {}GiB) if you meant mebibytes",
            i / 1024
        ),
        i if i >= 1024 => format!("write the unit: `{i}MiB` if you meant mebibytes"),
        i if i > 0 => format!("write the unit: `{i}GiB` (or `{}MiB`)", i * 1024),
        _ => "write a size such as 4GiB".to_owned(),
    }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn cidr_hints_name_what_is_wrong() {
        assert_eq!(cidr_hint("10.0.0.0/33"), "the prefix length /33 is over 32");
        assert_eq!(cidr_hint("10.0.0/8"), "`10.0.0` is not an IPv4 address");
        assert_eq!(cidr_hint("10.0.0.0"), "it needs a prefix length, e.g. /24");
        assert_eq!(cidr_hint("fd00::/8"), "only IPv4 is supported");
        assert_eq!(
            cidr_hint("10.0.0.0/x"),
            "`/x` is not a prefix length (0–32)"
        );
    }

    #[test]
    fn unit_hints_follow_the_magnitude() {
        assert_eq!(unit_hint(4), "write the unit: `4GiB` (or `4096MiB`)");
        assert_eq!(
            unit_hint(4096),
            "write the unit: `4096MiB` (= 4GiB) if you meant mebibytes"
        );
        assert_eq!(
            unit_hint(4_294_967_296),
            "write the unit: 4294967296 bytes is `4GiB`"
        );
        assert!(!unit_hint(4096).contains("4096GiB"));
    }
}
