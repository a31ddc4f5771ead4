#[lawcket::handler(table = "connections")]
async fn handler() -> i32 {
    0
}
