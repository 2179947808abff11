//! Which addresses a delivery report may never be sent to (the SSRF rules).
//!
//! Checked once when a `callback_url` is accepted (for IP literals and internal names) and, by
//! the callback dispatcher, again for every resolved address right before connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `true` when the address is globally routable: not loopback, private, link-local, CGNAT,
/// multicast, unspecified, documentation, benchmarking or reserved — including the IPv4-mapped,
/// IPv4-compatible and NAT64 (`64:ff9b::/96`) spellings of those; and never in the local-use
/// NAT64 prefix (`64:ff9b:1::/48`) or SIIT's IPv4-translated range (`::ffff:0:0/96`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let denied = a == 0                                  // 0.0.0.0/8 "this network"
        || a == 10                                       // 10/8 private
        || (a == 100 && (64..128).contains(&b))          // 100.64/10 CGNAT
        || a == 127                                      // loopback
        || (a == 169 && b == 254)                        // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))           // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)                // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)              // 6to4 relay anycast
        || (a == 192 && b == 168)                        // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19))            // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)             // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)              // TEST-NET-3
        || a >= 224; // 224/4 multicast, 240/4 reserved, broadcast
    !denied
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let denied = ip.is_unspecified()
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)  // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
        || (seg[..4] == [0, 0, 0, 0] && seg[4] == 0xffff && seg[5] == 0) // ::ffff:0:0/96 SIIT (RFC 2765)
        || ip.is_loopback()
        || (seg[0] & 0xfe00) == 0xfc00                    // fc00::/7 unique local
        || (seg[0] & 0xffc0) == 0xfe80                    // fe80::/10 link-local
        || (seg[0] & 0xffc0) == 0xfec0                    // fec0::/10 deprecated site-local
        || (seg[0] & 0xff00) == 0xff00                    // ff00::/8 multicast
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)         // 2001:db8::/32 documentation
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0])   // 100::/64 discard
        || (seg[0] == 0x2001 && seg[1] < 0x0200)          // 2001::/23 IETF protocol assignments
        || seg[0] == 0x2002; // 6to4 (embeds arbitrary v4)
    !denied
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) or
/// well-known-prefix NAT64 (`64:ff9b::a.b.c.d`) address. The local-use NAT64 prefix
/// (`64:ff9b:1::/48`) and SIIT's IPv4-translated addresses (`::ffff:0:a.b.c.d`) are not decoded:
/// they lead into a network of the operator's own, whatever IPv4 address they carry, so they are
/// refused whole.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = || Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    let mapped = seg[..5] == [0, 0, 0, 0, 0] && seg[5] == 0xffff;
    let compatible = seg[..6] == [0, 0, 0, 0, 0, 0] && !(seg[6] == 0 && seg[7] <= 1);
    let nat64 = seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0];
    (mapped || compatible || nat64).then(tail)
}

/// Names that only mean something inside a network: `localhost`, `*.localhost`, `*.local`,
/// `*.internal`, and single-label names that a search domain would complete.
pub fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || ["localhost", "local", "internal", "home.arpa", "localdomain"]
            .iter()
            .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn denies_non_public_ranges() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff::1",
            "::ffff:0:808:808",
            "::ffff:0:7f00:1",
            "::127.0.0.1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip(s)), "{s} must be denied");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "149.154.167.50",
            "100.128.0.1",
            "172.32.0.1",
            "2a00:1450::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(s)), "{s} must be allowed");
        }
    }

    #[test]
    fn internal_names() {
        for n in ["localhost", "api.localhost", "printer.local", "db.internal", "intranet", "LOCALHOST."] {
            assert!(is_internal_name(n), "{n}");
        }
        for n in ["example.com", "hooks.example.org", "local.example.com"] {
            assert!(!is_internal_name(n), "{n}");
        }
    }
}
