#[lawcket::handler(table = "connections")]
struct Handler;
