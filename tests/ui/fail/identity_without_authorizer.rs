// The identity (under another name) as a parameter of a handler with no
// authorizer.
use lawcket::Identity as Who;

#[lawcket::handler(table = "connections")]
async fn handler(who: Who, event: lawcket::Event) {
    let _ = (who, event);
}
