//! The one error type of the crate.
//!
//! Every variant names an input that would otherwise produce user-data that
//! cloud-init rejects or misreads *inside the VM*, where a failure is
//! invisible to the user until a launch timeout fires. Refusing it here, on
//! the host, turns that silent failure into a message next to the command
//! that caused it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Why a document could not be built or rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The hostname would be rewritten or refused by `hostnamectl`, and the
    /// Kubernetes node name derived from it would not be a DNS-1123 label.
    #[error("invalid hostname {hostname:?}: {reason}")]
    InvalidHostname {
        /// The refused name.
        hostname: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// `write_files` resolves relative paths against cloud-init's working
    /// directory and follows `..`, so only clean absolute paths say what
    /// they mean.
    #[error("invalid file path {path:?}: must be absolute, without `..`, NUL or newlines")]
    InvalidPath {
        /// The refused path.
        path: String,
    },

    /// Two `write_files` entries for one path: cloud-init writes both and the
    /// last one silently wins.
    #[error("two write_files entries target {path:?}")]
    DuplicatePath {
        /// The path written twice.
        path: String,
    },

    /// cloud-init parses `permissions` as an octal mode; bits above 0o7777
    /// are not a mode.
    #[error("file mode {mode:#o} is not a Unix permission mode (max 0o7777)")]
    InvalidMode {
        /// The refused mode.
        mode: u32,
    },

    /// An argv list needs a program to execute.
    #[error("a command needs a non-empty program name")]
    EmptyCommand,

    /// An argument that `execve` cannot carry (NUL), or that a systemd unit
    /// file would split, expand or reinterpret.
    #[error("argument {arg:?} is not allowed in {context}: {reason}")]
    InvalidArgument {
        /// The refused argument.
        arg: String,
        /// Where it was to be used.
        context: &'static str,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A systemd unit value with a newline or control character would start
    /// a new directive.
    #[error("systemd unit value {value:?} for {key} contains a newline or control character")]
    InvalidUnitValue {
        /// The directive.
        key: &'static str,
        /// The refused value.
        value: String,
    },

    /// netplan matches MAC addresses as lowercase `xx:xx:xx:xx:xx:xx` only.
    #[error("invalid MAC address {0:?}: expected six hex pairs separated by ':'")]
    InvalidMac(String),

    /// Interface names longer than IFNAMSIZ-1 or with separators are refused
    /// by the kernel.
    #[error("invalid interface name {0:?}: 1-15 characters, no '/', ':' or whitespace")]
    InvalidInterfaceName(String),

    /// A gateway outside the node's subnet is unreachable without an
    /// on-link route, and netplan would apply it without complaint.
    #[error("gateway {gateway} is outside the node subnet {address}")]
    GatewayOutsideSubnet {
        /// The unreachable gateway.
        gateway: Ipv4Addr,
        /// The node's address and prefix.
        address: Ipv4Net,
    },

    /// The node address must be a host address; the network or broadcast
    /// address of its own prefix does not work on Linux.
    #[error("{address} is the network or broadcast address of its subnet")]
    NotAHostAddress {
        /// The refused address.
        address: Ipv4Net,
    },

    /// The agent without a configuration cannot enrol; an empty file is
    /// certainly a caller mistake.
    #[error("the node-agent configuration is empty")]
    EmptyAgentConfig,

    /// The node-agent binary is empty; cloud-init would install a file that
    /// systemd then fails to execute on every restart.
    #[error("the node-agent binary is empty")]
    EmptyBinary,

    /// Compressing the payload failed (only an allocation failure can do this
    /// for an in-memory buffer, but the writer API is fallible).
    #[error("gzip compression of the node-agent binary failed: {0}")]
    Compress(#[source] std::io::Error),

    /// The YAML serializer refused the document.
    #[error("YAML serialisation failed: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),

    /// The rendered user-data exceeds what the transport accepts (Multipass
    /// sends it to its daemon in one gRPC message with the 4 MiB default cap,
    /// and the launch fails with an unhelpful RESOURCE_EXHAUSTED).
    #[error("rendered user-data is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Bytes rendered.
        size: usize,
        /// Bytes the transport accepts.
        limit: usize,
    },
}
