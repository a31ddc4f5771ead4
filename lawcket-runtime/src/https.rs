//! The one HTTP client every AWS call goes through: rustls on ring, trusting the
//! roots of Amazon Trust Services compiled into the binary.
//!
//! Why not the SDK's default client: it links aws-lc, a C library (leaving it
//! and the regex crates out took the release `echo` from 15.6 to 13.0 MB), and
//! reads the system's trust store at the first call, about 4 ms of a cold start
//! here (142 files on Debian; BENCHMARKS.md). AWS's service endpoints
//! (DynamoDB, `execute-api`) present certificates of Amazon Trust Services,
//! whose five roots are all they need (<https://www.amazontrust.com/repository/>;
//! "Many AWS services, such as Amazon EC2 and Amazon DynamoDB, already migrated
//! their CAs", AWS Knowledge Center, s3-cloudfront-certificate-migration).
//!
//! That holds in the commercial and GovCloud partitions. The system's store is
//! loaded as well (rustls-native-certs: on Linux the file and directory
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` name, else the usual bundle) when:
//! - `SSL_CERT_FILE` or `SSL_CERT_DIR` is set: for an endpoint behind another
//!   CA (a custom domain with an imported certificate, a TLS-terminating proxy,
//!   an emulator served over HTTPS);
//! - the region is in another partition (China, the ISO regions, the European
//!   Sovereign Cloud), whose endpoints need not chain to these roots.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Root CA 1–4 and Starfield Services Root CA G2, as PEM.
const AMAZON_ROOTS: &[u8] = include_bytes!("../roots/amazon-trust-services.pem");

/// Whether the system's trust store is needed too (see the module's docs).
fn system_store() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some();
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION"));
    // The commercial partition's regions and GovCloud's (`us-gov-*`) have plain
    // geographic prefixes; China's are `cn-*`, the ISO regions `us-iso*`, the
    // European Sovereign Cloud's `eusc-*`.
    let other_partition = region.is_ok_and(|region| {
        ["cn-", "us-iso", "eusc-"]
            .iter()
            .any(|prefix| region.starts_with(prefix))
    });
    set("SSL_CERT_FILE") || set("SSL_CERT_DIR") || other_partition
}

/// The HTTP(S) client for SDK settings lawcket loads.
pub(crate) fn client() -> SharedHttpClient {
    let system = system_store();
    let trust = TrustStore::empty()
        .with_native_roots(system)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("TlsContextBuilder::build has no failing case");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::AMAZON_ROOTS;

    #[test]
    fn the_compiled_in_roots_are_amazons_five() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(AMAZON_ROOTS)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 5);
        // Each certificate names its subject in its own bytes.
        for (der, name) in certs.iter().zip([
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ]) {
            let name = name.as_bytes();
            assert!(der.windows(name.len()).any(|w| w == name), "{der:?}");
        }
    }
}
