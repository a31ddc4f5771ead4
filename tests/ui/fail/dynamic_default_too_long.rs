// The default is checked against `max_len` (and, without it, the built-in 128).
#[lawcket::handler(
    table = "connections",
    sync(
        channel = query("channel", default = "#general", max_len = 4),
        topic = query(
            "topic",
            default =
"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        room = query("room", default = ""),
    ),
)]
async fn handler() {}
