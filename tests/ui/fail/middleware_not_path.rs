#[lawcket::handler(
    table = "connections",
    middleware = [|event, _| async move { Ok::<_, lawcket::Error>(event) }],
    plugins = [counts[0], <Plugins>::count],
)]
async fn handler() {}

struct Plugins;

impl Plugins {
    async fn count() {}
}
