// An authorizer of the wrong shape: it takes a token and answers a bool.
async fn check(token: String) -> bool {
    !token.is_empty()
}

#[lawcket::handler(table = "connections", authorizer = check)]
async fn handler() {}
