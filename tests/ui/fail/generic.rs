#[lawcket::handler(table = "connections")]
async fn handler<T: Default>() {
    let _ = T::default();
}
