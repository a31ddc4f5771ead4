//! moto's server: a real DynamoDB wire endpoint on 127.0.0.1, one per test binary.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the pipe ends `read` in the wrapper, which kills moto.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// How to get moto, for failure messages.
const HOW: &str = "run the tests with `scripts/test.sh` (it installs moto into .venv), \
    or `python3 -m venv .venv && .venv/bin/pip install 'moto[dynamodb,sqs]' flask flask-cors`";

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LAWCKET_MOTO_SERVER") {
        return path.into();
    }
    super::repo().join(".venv/bin/moto_server")
}

/// The moto server of this test process, started on first use. Statics are not
/// dropped at exit, so the child is started with a parent-death guard: it exits
/// when its stdin (a pipe held by this process) closes.
pub fn shared() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

pub fn start() -> Moto {
    let binary = binary();
    assert!(
        binary.exists(),
        "moto_server not found at {}: {HOW}",
        binary.display()
    );
    launch(&format!("\"{}\"", binary.display()), &binary, None)
}

/// moto's server with each DynamoDB request applied alone, as DynamoDB applies
/// a conditional write atomically (moto's threads can interleave between a
/// condition's check and its write): support/moto_server.py. For tests where
/// several processes write the same items at once.
pub fn start_serialized() -> Moto {
    let binary = binary();
    // The interpreter of the environment moto_server was installed in.
    let python = binary.with_file_name("python");
    assert!(
        python.exists(),
        "no python beside moto_server ({}): {HOW}",
        binary.display()
    );
    let script = super::repo().join("tests/support/moto_server.py");
    let log = std::env::temp_dir().join(format!(
        "lawcket-moto-{}-{}.log",
        std::process::id(),
        super::free_port()
    ));
    launch(
        &format!("\"{}\" \"{}\"", python.display(), script.display()),
        &binary,
        Some(&log),
    )
}

/// Runs `command` (moto's server, quoted for `sh`) on a free port until this
/// process ends, its output to `log` if given.
fn launch(command: &str, binary: &std::path::Path, log: Option<&std::path::Path>) -> Moto {
    let port = super::free_port();
    let output = log.map_or("/dev/null".to_owned(), |log| {
        format!("\"{}\"", log.display())
    });
    // moto ignores stdin; `sh -c` with `read` makes it die with this process.
    let script =
        format!("{command} -H 127.0.0.1 -p {port} >{output} 2>&1 & pid=$!; read _; kill $pid");
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {HOW}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on 127.0.0.1:{port} within 20 s; {HOW}{}",
            log.map_or(String::new(), |log| format!(
                "\n--- {} ---\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            ))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    }
}

impl Moto {
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(lawcket_runtime::test_util::http_client())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "lawcket-tests",
            ))
            .load()
            .await
    }

    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// Environment for a child process that should use this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }
}

/// The item stored for `connection_id` in `table`, read consistently.
pub async fn item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    connection_id: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key(
            "connectionId",
            aws_sdk_dynamodb::types::AttributeValue::S(connection_id.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// Creates a connections table (hash key `connectionId`) named `name`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("connectionId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("connectionId")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
}

/// A connections table with a global secondary index per `(field, index)`,
/// projected as deploy/'s indexes are.
#[allow(dead_code)] // not every test binary uses it
pub async fn create_indexed_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    indexes: &[(&str, &str)],
) {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let hash = |name: &str| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(KeyType::Hash)
            .build()
            .unwrap()
    };
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("connectionId"))
        .key_schema(hash("connectionId"));
    for (field, index) in indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes("stage")
            .non_key_attributes("ttl")
            .non_key_attributes("domainName")
            .non_key_attributes("connectedAt")
            .build();
        create = create
            .attribute_definitions(attribute(field))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(hash(field))
                    .projection(projection)
                    .build()
                    .unwrap(),
            );
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
}

/// A table name no other test uses.
pub fn unique_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The ids of every connection in `table`, read page by page.
pub async fn stored_ids(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in out.items() {
            ids.insert(item["connectionId"].as_s().unwrap().clone());
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return ids,
        }
    }
}
