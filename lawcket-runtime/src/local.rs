//! The local gateway (placeholder until it lands).
use crate::{Config, Error, Handler};

pub(crate) async fn serve(_config: Config, _handler: Box<dyn Handler>) -> Result<(), Error> {
    Err(Error::Config("AWS_LAMBDA_RUNTIME_API is not set: not running on Lambda".into()))
}
