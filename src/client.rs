//! A minimal HTTP/1.1 client for the command line (`stockd backup`): plain `http://` to a
//! daemon the operator runs, one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long the CLI waits on the daemon (a snapshot of a large file takes a while).
pub const TIMEOUT_SECONDS: u64 = 600;

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `http://host:port[/prefix]` → (host:port, prefix without a trailing slash).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("`{url}`: only http:// URLs are supported (put TLS in front, and use it from the host)")
    })?;
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, prefix.to_string()))
}

/// Sends one request and reads the whole answer (Content-Length, chunked or to EOF).
pub fn send(url: &str, method: &str, path: &str, token: &str) -> Result<Answer, String> {
    let (host, prefix) = split_url(url)?;
    let io = |e: std::io::Error| format!("{host}: {e}");
    let mut stream = TcpStream::connect(&host).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(TIMEOUT_SECONDS)))
        .map_err(io)?;
    let head = format!(
        "{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{host}: not an HTTP answer"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(io)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(io)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| format!("{host}: bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(io)?;
            line.clear();
            reader.read_line(&mut line).map_err(io)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).map_err(io)?;
    } else {
        reader.read_to_end(&mut body).map_err(io)?;
    }
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080").ok(),
            Some(("127.0.0.1:8080".into(), "".into()))
        );
        assert_eq!(
            split_url("http://h/stock/").ok(),
            Some(("h:80".into(), "/stock".into()))
        );
        assert!(split_url("https://h").is_err());
    }
}
