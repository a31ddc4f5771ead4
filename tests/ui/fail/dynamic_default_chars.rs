// The default is checked against `chars` (and, without `chars`, the built-in set).
#[lawcket::handler(
    table = "connections",
    sync(channel = query("channel", default = "#General", chars = "a-z#"), topic = query("topic", default = "rust lang")),
)]
async fn handler() {}
