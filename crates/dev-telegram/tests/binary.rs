//! The `verigram-dev-telegram` binary as a person runs it: it listens where told, prints the
//! `verigram sender add-dev` lines for its accounts, and accepts MTProto connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn it_listens_and_names_its_accounts() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verigram-dev-telegram"))
        .args(["--listen", "127.0.0.1:0", "--account", "+447700900007", "--reads-after", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let first = lines.next().unwrap();
    let addr = first.strip_prefix("verigram-dev-telegram is listening on ").unwrap_or_else(|| panic!("{first}"));
    std::net::TcpStream::connect(addr).expect("the peer accepts connections");
    assert!(lines.next().unwrap().contains("sender.kind = \"telegram\""));
    let add = lines.next().unwrap();
    assert_eq!(add.trim(), format!("verigram sender add-dev dev1 --phone-number +447700900007 --peer {addr}"));
}
