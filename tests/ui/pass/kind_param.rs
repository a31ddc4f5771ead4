#[lawcket::handler(table = "connections")]
async fn handler(kind: lawcket::Kind) {
    let _ = kind;
}
