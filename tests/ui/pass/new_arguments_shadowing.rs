//! User items named like what the expansion uses do not change its meaning:
//! the runtime is reached through `::lawcket`, `include_str!` through `::core`,
//! and builder methods are inherent (they win over the user's trait methods).
#![allow(dead_code, unused_macros)]

struct Config;
struct Dynamic;
fn query(_: &str) {}
fn header(_: &str) {}
macro_rules! include_str {
    ($($t:tt)*) => {
        compile_error!("the user's include_str! was used")
    };
}
mod lawcket {}
mod core {}

trait Everything {
    fn default(self, _: &str) -> Self;
    fn middleware(self, _: &str, _: ()) -> Self;
    fn plugin(self, _: &str, _: ()) -> Self;
    fn max_len(self, _: usize) -> Self;
}

impl<T> Everything for T {
    fn default(self, _: &str) -> Self {
        self
    }
    fn middleware(self, _: &str, _: ()) -> Self {
        self
    }
    fn plugin(self, _: &str, _: ()) -> Self {
        self
    }
    fn max_len(self, _: usize) -> Self {
        self
    }
}

#[::lawcket::handler(
    table = "connections",
    sync(channel = query("channel", default = "#general", max_len = 32)),
    middleware = [pass],
    plugins = [nothing],
    local(page = "page.html"),
)]
async fn handler() {}

async fn pass(event: ::lawcket::Event, _: ::lawcket::Connection) -> Result<::lawcket::Event, ::lawcket::Error> {
    Ok(event)
}

async fn nothing() {}
