//! The cold-start floor: what a careful hand-written Lambda for an API Gateway
//! WebSocket API does without lawcket, with the same crates and SDK features
//! (lambda_runtime, aws-sdk-dynamodb, rustls on ring with the SDK's default
//! trust store). `$connect` stores the connection, `$disconnect` deletes it.
//! benches/cold_start.rs times both from exec to the first answered CONNECT.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("CONNECTIONS_TABLE")?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let (dynamodb, table) = (&dynamodb, &table);
            async move {
                let context = event.payload.request_context;
                let id = context.connection_id.unwrap_or_default();
                match context.event_type.as_deref() {
                    Some("CONNECT") => {
                        dynamodb
                            .put_item()
                            .table_name(table)
                            .item("connectionId", AttributeValue::S(id))
                            .item("channel", AttributeValue::S("#general".into()))
                            .send()
                            .await?;
                    }
                    Some("DISCONNECT") => {
                        dynamodb
                            .delete_item()
                            .table_name(table)
                            .key("connectionId", AttributeValue::S(id))
                            .send()
                            .await?;
                    }
                    _ => {}
                }
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = 200;
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}
