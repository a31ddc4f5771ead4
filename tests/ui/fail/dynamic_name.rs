// The first argument is the parameter's or header's name: a non-empty string.
#[lawcket::handler(
    table = "connections",
    sync(channel = query(), team = header(x_team), room = query(""), tag = query(default = "x")),
)]
async fn handler() {}
