extern crate lawcket as renamed;

#[renamed::handler(table = "connections", crate = "renamed")]
async fn handler() {}
