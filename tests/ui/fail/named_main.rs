#[lawcket::handler(table = "connections")]
async fn main() {}
