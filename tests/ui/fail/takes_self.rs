struct Server;

impl Server {
    #[lawcket::handler(table = "connections")]
    async fn handler(&self) {}
}
