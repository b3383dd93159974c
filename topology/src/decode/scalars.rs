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
            let hint = if s.contains(':') {
                "only IPv4 is supported"
            } else if !s.contains('/') {
                "it needs a prefix length"
            } else {
                "it is not address/prefix"
            };
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
            self.report.error_at(
                node.pos,
                path,
                format!("{i} has no unit"),
                format!("write the unit, e.g. `{i}GiB` or `{i}MiB`"),
            );
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
