//! An X display for window tests: the session's own when `DISPLAY` is set, else a private
//! Xvfb server, stopped on drop.
#![allow(clippy::expect_used, missing_docs)]

use std::process::{Child, Command, Stdio};

/// An X display.
#[derive(Debug)]
pub struct Display {
    xvfb: Option<Child>,
    /// `:N`, for the `DISPLAY` of the programs under test.
    pub name: String,
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(x) = self.xvfb.as_mut() {
            let _ = x.kill();
            let _ = x.wait();
        }
    }
}

/// The session's display, or a new Xvfb screen of `width`x`height`.
pub fn display(width: u32, height: u32) -> Display {
    if let Ok(name) = std::env::var("DISPLAY")
        && !name.is_empty()
    {
        return Display { xvfb: None, name };
    }
    // Each its own server: Xvfb picks a free display and prints its number.
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            &format!("{width}x{height}x24"),
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (make setup installs xvfb)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("Xvfb's stdout")),
        &mut line,
    )
    .expect("Xvfb's display number");
    Display {
        xvfb: Some(child),
        name: format!(":{}", line.trim()),
    }
}
