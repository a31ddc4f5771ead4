// Each is reported, and parsing goes on to the next.
#[lawcket::handler(table = "connections", sync(), index(), local())]
async fn handler() {}
