#[lawcket::handler(
    table = "connections",
    sync(
        connectionId = "a",
        domainName = "b",
        stage = "c",
        connectedAt = 1,
        updatedAt = 2,
        ttl = 3
    )
)]
async fn handler() {}
