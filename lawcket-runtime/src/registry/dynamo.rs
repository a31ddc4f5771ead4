use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;
use crate::config::SyncValue;
use crate::Error;

/// A DynamoDB connections table (hash key `connectionId`, a string).
#[derive(Clone, Debug)]
pub struct Dynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Dynamo {
    /// A registry on `table`, using `client` (built once per process).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Dynamo {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) async fn store(&self, item: &Item) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(item)))
            .send()
            .await
            .map_err(|e| self.error("PutItem", e))?;
        Ok(())
    }

    pub(super) async fn release(&self, connection_id: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("connectionId", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await
            .map_err(|e| self.error("DeleteItem", e))?;
        Ok(())
    }

    fn error<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let message = match error.code() {
            Some("ResourceNotFoundException") => format!(
                "the table does not exist in this account and region; create it (hash key \
                 `connectionId`, type S) or fix the table name, AWS_REGION or AWS_ENDPOINT_URL ({})",
                error.message().unwrap_or("resource not found")
            ),
            Some("AccessDeniedException") => format!(
                "access denied; the function's role needs dynamodb:{operation} on this table ({})",
                error.message().unwrap_or("no details")
            ),
            _ => match &error {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                    "DynamoDB could not be reached: {}",
                    DisplayErrorContext(&error)
                ),
                _ => DisplayErrorContext(&error).to_string(),
            },
        };
        Error::Registry {
            table: self.table.clone(),
            operation,
            message,
        }
    }
}

fn to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut map = HashMap::with_capacity(5 + item.fields.len());
    for (name, value) in &item.fields {
        map.insert(name.clone(), sync_value(value));
    }
    // Written after the sync fields so a reserved name can never be overwritten.
    map.insert(
        "connectionId".into(),
        AttributeValue::S(item.connection_id.clone()),
    );
    map.insert("domainName".into(), AttributeValue::S(item.domain_name.clone()));
    map.insert("stage".into(), AttributeValue::S(item.stage.clone()));
    map.insert(
        "connectedAt".into(),
        AttributeValue::N(item.connected_at.to_string()),
    );
    map.insert("ttl".into(), AttributeValue::N(item.ttl.to_string()));
    map
}

pub(crate) fn sync_value(value: &SyncValue) -> AttributeValue {
    match value {
        SyncValue::Str(s) => AttributeValue::S(s.clone()),
        SyncValue::Int(i) => AttributeValue::N(i.to_string()),
        SyncValue::Bool(b) => AttributeValue::Bool(*b),
    }
}
