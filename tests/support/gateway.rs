//! A local gateway in the test process, on a free port, with a handler the test
//! gives; and a small HTTP client for its `@connections` API.

use std::sync::Arc;
use std::time::Duration;

use lawcket_runtime::test_util::{
    offline_sdk_config, LocalGateway, Memory, Pipeline, Registry, Settings,
};
use lawcket_runtime::{Config, Handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

pub struct Local {
    pub addr: std::net::SocketAddr,
    pub memory: Arc<Memory>,
}

/// An `Authorization` header of the shape SigV4 gives (the signature is not
/// checked locally).
pub const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

pub type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Local {
    pub async fn start(config: Config, settings: Settings, handler: impl Handler) -> Local {
        let settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..settings
        };
        let gateway = LocalGateway::bind(settings).await.unwrap();
        let addr = gateway.local_addr();
        let memory = Arc::new(Memory::new());
        // As the generated main does: posts to the gateway itself go in process.
        let sdk = gateway.in_process_sdk(offline_sdk_config().await);
        let pipeline = Pipeline::new(
            config,
            Registry::Memory(Arc::clone(&memory)),
            sdk,
            Some(gateway.endpoint()),
            handler,
        );
        tokio::spawn(gateway.serve(Arc::new(pipeline)));
        Local { addr, memory }
    }

    pub async fn connect(&self, query: &str) -> Result<Client, tungstenite::Error> {
        let url = format!("ws://{}/{query}", self.addr);
        tokio_tungstenite::connect_async(url)
            .await
            .map(|(ws, _)| ws)
    }

    /// An SDK client for the gateway's `@connections` API, signing with any
    /// credentials (the gateway accepts them all).
    pub async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let sdk = offline_sdk_config().await;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(format!("http://{}", self.addr))
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// One HTTP request to the gateway with an `Authorization` header as
    /// `curl --aws-sigv4` sends; answers (status, body).
    pub async fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let signed = format!("authorization: {SIGNED}\r\nhost: {}", self.addr);
        self.raw_http(method, path, &signed, body).await
    }

    /// One HTTP request with exactly the `headers` given (`name: value`
    /// lines joined by CRLF); answers (status, body).
    pub async fn raw_http(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\n{headers}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

/// The next data message, skipping pings; panics after 5 s.
pub async fn next_text(client: &mut Client) -> String {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("no message within 5 s")
            .expect("stream ended")
            .expect("websocket error");
        match message {
            tungstenite::Message::Text(text) => return text.as_str().to_owned(),
            tungstenite::Message::Binary(bytes) => return format!("binary:{bytes:?}"),
            tungstenite::Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Waits for the server's close frame and returns its code.
pub async fn close_code(client: &mut Client) -> u16 {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("no close within 5 s")
        {
            Some(Ok(tungstenite::Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(tungstenite::Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("websocket error before close: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Polls `condition` for up to 5 s.
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    eventually_within(Duration::from_secs(5), what, condition).await
}

/// Polls `condition` for up to `limit`.
pub async fn eventually_within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
