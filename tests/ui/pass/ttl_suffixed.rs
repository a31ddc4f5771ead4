// The literal is re-written unsuffixed, so any integer suffix works.
#[lawcket::handler(table = "connections", ttl = 600u32)]
async fn handler() {}
